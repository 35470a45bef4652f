"""A real loopback HTTP server that speaks enough of ``bedrock-runtime`` to stand in for it.

Point boto3 at it with ``endpoint_url=mock.endpoint_url`` (or ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``)
and any dummy credentials.  Used by tests (in a thread) and by benchmarks (as a process:
``python -m tests.support.bedrock_mock --delay 2``, which prints the port).

Operations (``POST /model/{modelId}/{operation}``, the model id percent-encoded as botocore sends it):

- ``converse``: by default answers ``echo: <last user text>`` (or, when a tool is forced, a ``toolUse``
  whose input is a minimal value of the tool's schema), usage from word counts.
- ``converse-stream``: the same answer as AWS event-stream frames (``messageStart``,
  ``contentBlockDelta`` per word, or the forced tool's input JSON in two ``toolUse`` pieces,
  ``contentBlockStop``, ``messageStop``, ``metadata``).
- ``invoke``: Titan embeddings (``inputText`` -> deterministic unit vector; 1536 dims for v1,
  ``dimensions`` or 1024 for v2) and Cohere embeddings (``texts``).

Script answers per operation with :meth:`BedrockMock.script` (a FIFO of :class:`Reply`; when it runs
out, the default responder answers), or replace a responder with :meth:`BedrockMock.on`.
:func:`error` builds an AWS error (``x-amzn-ErrorType`` header and ``__type`` body, so botocore raises
``ThrottlingException`` etc.).  Every request is recorded in :attr:`BedrockMock.requests` with the raw
path botocore sent and the decoded model id.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.support.loopback import QuietHandler, ScriptedServer, serve_standalone

CONVERSE = "converse"
CONVERSE_STREAM = "converse-stream"
INVOKE = "invoke"

#: HTTP status Bedrock uses for each error code.
ERROR_STATUS: dict[str, int] = {
    "ThrottlingException": 429,
    "ModelNotReadyException": 429,
    "ServiceQuotaExceededException": 400,
    "ServiceUnavailableException": 503,
    "InternalServerException": 500,
    "ModelErrorException": 424,
    "ModelTimeoutException": 408,
    "AccessDeniedException": 403,
    "UnrecognizedClientException": 403,
    "ExpiredTokenException": 403,
    "ValidationException": 400,
    "ResourceNotFoundException": 404,
}


@dataclass
class Event:
    """One event-stream frame: an event (``type`` = event name) or, with ``exception``, an error."""

    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    exception: bool = False


@dataclass
class Reply:
    """One scripted answer. ``body`` -> JSON; ``raw`` bytes are sent as they are; ``events`` as an
    AWS event stream (``event_delay`` seconds before each frame)."""

    status: int = 200
    body: dict[str, Any] | list[Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the server stops)
    reset: bool = False  # close the connection without an answer
    events: list[Event] | None = None
    event_delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str  # as sent, percent-encoded (``/model/us.anthropic...v1%3A0/converse``)
    operation: str  # converse | converse-stream | invoke | ...
    model_id: str  # decoded
    headers: dict[str, str]
    json: Any
    raw: bytes


# --- answer builders --------------------------------------------------------------------------


def converse_answer(
    text: str = "mock answer",
    *,
    stop_reason: str = "end_turn",
    input_tokens: int = 11,
    output_tokens: int = 7,
) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 5},
    }


def tool_use_answer(
    name: str,
    tool_input: Any,
    *,
    stop_reason: str = "tool_use",
    input_tokens: int = 11,
    output_tokens: int = 7,
) -> dict[str, Any]:
    answer = converse_answer(
        "", stop_reason=stop_reason, input_tokens=input_tokens, output_tokens=output_tokens
    )
    answer["output"]["message"]["content"] = [
        {"toolUse": {"toolUseId": "tooluse_mock", "name": name, "input": tool_input}}
    ]
    return answer


def titan_embedding(vector: list[float], *, tokens: int = 3) -> dict[str, Any]:
    return {"embedding": vector, "inputTextTokenCount": tokens}


def error(
    code: str, message: str = "mock error", *, status: int | None = None, retry_after: str | None = None
) -> Reply:
    """An AWS JSON error botocore turns into ``ClientError`` with ``Error.Code == code``."""
    headers = {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return Reply(
        status=status or ERROR_STATUS.get(code, 400),
        body={"__type": code, "message": message},
        headers=headers,
    )


def stream_events(
    pieces: list[str],
    *,
    stop_reason: str = "end_turn",
    input_tokens: int = 11,
    output_tokens: int = 7,
    tool: tuple[str, list[str]] | None = None,
) -> list[Event]:
    """The frames of a ConverseStream answer: text ``pieces`` (or ``tool`` = (name, input JSON pieces))."""
    events = [Event("messageStart", {"role": "assistant"})]
    if tool is not None:
        name, chunks = tool
        events.append(
            Event(
                "contentBlockStart",
                {"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t1", "name": name}}},
            )
        )
        events += [
            Event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"toolUse": {"input": c}}})
            for c in chunks
        ]
    else:
        events += [Event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
    events += [
        Event("contentBlockStop", {"contentBlockIndex": 0}),
        Event("messageStop", {"stopReason": stop_reason}),
        Event(
            "metadata",
            {
                "usage": {
                    "inputTokens": input_tokens,
                    "outputTokens": output_tokens,
                    "totalTokens": input_tokens + output_tokens,
                },
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
    return events


def _tool_plan(body: dict[str, Any]) -> list[tuple[str, str, Any]] | str | None:
    """What Claude does with caller tools, reduced to a rule: after ``toolResult`` blocks answer
    ``tool said: <results>``; otherwise (auto/any) call the first two tools with inputs sampled from
    their schemas. ``None``: no tools, or a forced tool (answered with one toolUse)."""
    config = body.get("toolConfig") or {}
    specs = [t["toolSpec"] for t in config.get("tools", []) if "toolSpec" in t]
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    results = [
        b["toolResult"] for b in last.get("content") or [] if isinstance(b, dict) and "toolResult" in b
    ]
    if results:
        return "tool said: " + "; ".join(_text_of(r.get("content")) for r in results)
    if not specs or (config.get("toolChoice") or {}).get("tool"):
        return None  # a forced tool (structured output or tool_choice function): answered below
    specs = specs[:2]
    return [
        (f"tooluse_{i}_{s['name']}", s["name"], sample_for_schema((s.get("inputSchema") or {}).get("json")))
        for i, s in enumerate(specs)
    ]


def tool_stream_events(plan: list[tuple[str, str, Any]], *, input_tokens: int = 11) -> list[Event]:
    """ConverseStream frames of a text block then one toolUse block per call (input in two pieces)."""
    events = [
        Event("messageStart", {"role": "assistant"}),
        Event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me look."}}),
        Event("contentBlockStop", {"contentBlockIndex": 0}),
    ]
    for k, (use_id, name, value) in enumerate(plan, start=1):
        raw = json.dumps(value)
        half = len(raw) // 2
        events.append(
            Event(
                "contentBlockStart",
                {"contentBlockIndex": k, "start": {"toolUse": {"toolUseId": use_id, "name": name}}},
            )
        )
        for piece in (raw[:half], raw[half:]):
            events.append(
                Event("contentBlockDelta", {"contentBlockIndex": k, "delta": {"toolUse": {"input": piece}}})
            )
        events.append(Event("contentBlockStop", {"contentBlockIndex": k}))
    events += [
        Event("messageStop", {"stopReason": "tool_use"}),
        Event(
            "metadata",
            {
                "usage": {"inputTokens": input_tokens, "outputTokens": 9, "totalTokens": input_tokens + 9},
                "metrics": {"latencyMs": 5},
            },
        ),
    ]
    return events


def exception_event(code: str, message: str = "mock stream error") -> Event:
    """An error inside a stream; ``code`` as Bedrock names it there (``throttlingException``)."""
    return Event(code, {"message": message}, exception=True)


def fake_vector(text: str, dims: int = 8) -> list[float]:
    """Deterministic unit vector for ``text`` (same text, same vector)."""
    raw: list[float] = []
    counter = 0
    while len(raw) < dims:
        digest = hashlib.sha256(f"{counter}:{text}".encode()).digest()
        raw.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    raw = raw[:dims]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]


def _tool_blocks_without_config(body: dict[str, Any]) -> Reply | None:
    """Converse's validation of tool history: ``toolUse``/``toolResult`` blocks in ``messages`` need a
    ``toolConfig`` in the same request, else a ``ValidationException`` (400)."""
    if body.get("toolConfig"):
        return None
    for message in body.get("messages") or []:
        for block in message.get("content") or []:
            if isinstance(block, dict) and ("toolUse" in block or "toolResult" in block):
                return error(
                    "ValidationException",
                    "The toolConfig field must be defined when using toolUse and toolResult content blocks.",
                )
    return None


def _forced_tool_input(body: dict[str, Any]) -> tuple[str, Any] | None:
    """``(name, input)`` for a forced ``toolChoice.tool`` (a minimal value of its schema), else ``None``."""
    tool_config = body.get("toolConfig") or {}
    forced = ((tool_config.get("toolChoice") or {}).get("tool") or {}).get("name")
    if not forced:
        return None
    spec: dict[str, Any] = next(
        (t["toolSpec"] for t in tool_config.get("tools", []) if t.get("toolSpec", {}).get("name") == forced),
        {},
    )
    return forced, sample_for_schema((spec.get("inputSchema") or {}).get("json"))


def sample_for_schema(schema: Any) -> Any:
    """A minimal value of a JSON schema (for the default tool-use answer)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("enum"):
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: sample_for_schema(v) for k, v in props.items()}
    if kind == "array":
        return []
    return {"string": "mock", "integer": 0, "number": 0, "boolean": True}.get(str(kind))


# --- AWS event-stream encoding ------------------------------------------------------------------


def _string_header(name: str, value: str) -> bytes:
    n, v = name.encode(), value.encode()
    return struct.pack("!B", len(n)) + n + b"\x07" + struct.pack("!H", len(v)) + v


def encode_frame(event: Event) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message (prelude, headers, payload, CRCs)."""
    if event.exception:
        headers = {
            ":exception-type": event.type,
            ":content-type": "application/json",
            ":message-type": "exception",
        }
    else:
        headers = {":event-type": event.type, ":content-type": "application/json", ":message-type": "event"}
    header_bytes = b"".join(_string_header(k, v) for k, v in headers.items())
    payload = json.dumps(event.payload).encode()
    total = 12 + len(header_bytes) + len(payload) + 4
    prelude = struct.pack("!II", total, len(header_bytes))
    message = prelude + struct.pack("!I", binascii.crc32(prelude)) + header_bytes + payload
    return message + struct.pack("!I", binascii.crc32(message))


# --- the server ---------------------------------------------------------------------------------

Responder = Callable[[Recorded], Reply | dict[str, Any]]


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return str(content or "")


class BedrockMock(ScriptedServer[Reply]):
    """Routes are the operations: ``converse``, ``converse-stream``, ``invoke``."""

    reply_type = Reply

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0) -> None:
        responders: dict[str, Responder] = {
            CONVERSE: self._default_converse,
            CONVERSE_STREAM: self._default_converse_stream,
            INVOKE: self._default_invoke,
        }
        super().__init__(responders, host, port, delay=delay)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, operation: str | None = None) -> list[Recorded]:
        return [r for r in list(self.requests) if operation is None or r.operation == operation]

    # --- default behaviour ----------------------------------------------------------------------
    @staticmethod
    def _answer_text(body: dict[str, Any]) -> tuple[str, int]:
        messages = body.get("messages") or []
        last: dict[str, Any] = next(
            (m for m in reversed(messages) if m.get("role") == "user"), {"content": []}
        )
        text = f"echo: {_text_of(last.get('content'))}"
        words = sum(len(_text_of(m.get("content")).split()) for m in messages)
        words += len(_text_of(body.get("system")).split())
        return text, words + 3

    def _default_converse(self, req: Recorded) -> Reply | dict[str, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        refused = _tool_blocks_without_config(body)
        if refused is not None:
            return refused
        text, prompt_tokens = self._answer_text(body)
        plan = _tool_plan(body)
        if isinstance(plan, str):
            return converse_answer(plan, input_tokens=prompt_tokens, output_tokens=len(plan.split()))
        if plan:
            answer = converse_answer("", stop_reason="tool_use", input_tokens=prompt_tokens, output_tokens=9)
            answer["output"]["message"]["content"] = [
                {"text": "Let me look that up."},
                *({"toolUse": {"toolUseId": i, "name": n, "input": v}} for i, n, v in plan),
            ]
            return answer
        forced = _forced_tool_input(body)
        if forced is not None:
            return tool_use_answer(*forced, input_tokens=prompt_tokens, output_tokens=5)
        return converse_answer(text, input_tokens=prompt_tokens, output_tokens=len(text.split()))

    def _default_converse_stream(self, req: Recorded) -> Reply | dict[str, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        refused = _tool_blocks_without_config(body)
        if refused is not None:
            return refused
        text, prompt_tokens = self._answer_text(body)
        plan = _tool_plan(body)
        if isinstance(plan, str):
            text = plan
        elif plan:
            return Reply(events=tool_stream_events(plan, input_tokens=prompt_tokens))
        forced = _forced_tool_input(body)
        if forced is not None:  # the forced tool's input JSON in two pieces, as Converse answers it
            raw = json.dumps(forced[1])
            pieces = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
            events = stream_events(
                [],
                stop_reason="tool_use",
                input_tokens=prompt_tokens,
                output_tokens=5,
                tool=(forced[0], pieces),
            )
            return Reply(events=events)
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        return Reply(events=stream_events(pieces, input_tokens=prompt_tokens, output_tokens=len(words)))

    @staticmethod
    def _default_invoke(req: Recorded) -> Reply | dict[str, Any]:
        body = req.json if isinstance(req.json, dict) else {}
        if isinstance(body.get("inputText"), str):
            text = body["inputText"]
            dims = int(body.get("dimensions") or (1536 if "embed-text-v1" in req.model_id else 1024))
            return titan_embedding(fake_vector(text, dims), tokens=len(text.split()) + 1)
        if isinstance(body.get("texts"), list):
            texts = [str(t) for t in body["texts"]]
            tokens = sum(len(t.split()) for t in texts)
            return Reply(
                body={
                    "id": "mock",
                    "response_type": "embeddings_floats",
                    "texts": texts,
                    "embeddings": [fake_vector(t, 1024) for t in texts],
                },
                headers={"X-Amzn-Bedrock-Input-Token-Count": str(tokens)},
            )
        return error("ValidationException", "Malformed input request")

    # --- HTTP plumbing --------------------------------------------------------------------------
    def _next_reply(self, req: Recorded) -> Reply:
        return self._next(
            req.operation,
            req,
            lambda: error("UnknownOperationException", f"mock has no operation {req.operation}", status=404),
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                raw, body = self.read_body()
                path = self.path.split("?", 1)[0]
                model_id, operation = "", path.rsplit("/", 1)[-1]
                if path.startswith("/model/") and path.count("/") >= 3:
                    model_id = unquote(path[len("/model/") : path.rindex("/")])
                req = Recorded(self.command, path, operation, model_id, dict(self.headers.items()), body, raw)
                mock.requests.append(req)
                reply = mock._next_reply(req)
                delay = reply.delay or mock.delay
                if (delay and mock._stop.wait(delay)) or reply.hang:
                    mock._stop.wait()
                    self.close_connection = True  # stopping: drop the connection, do not wait for more
                    return
                if reply.reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if reply.events is not None:  # chunked, one frame per chunk, as AWS sends them
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                    self.send_header("Transfer-Encoding", "chunked")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.close_connection = True
                    try:
                        for event in reply.events:
                            if reply.event_delay and mock._stop.wait(reply.event_delay):
                                return  # close_connection is already set
                            frame = encode_frame(event)
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                            self.wfile.flush()
                        self.wfile.write(b"0\r\n\r\n")
                    except OSError:  # the client went away
                        pass
                    return
                self.send_whole(reply.status, reply.body, reply.raw, reply.headers)

            do_GET = _serve
            do_POST = _serve

        return Handler


def main() -> None:
    serve_standalone(BedrockMock, "Loopback bedrock-runtime stand-in for benchmarks.")


if __name__ == "__main__":
    main()
