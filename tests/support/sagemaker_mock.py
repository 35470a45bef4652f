"""A real loopback HTTP server that speaks enough of ``sagemaker-runtime`` to stand in for it, with
an LMI/TGI container's Messages API behind every endpoint.

Point boto3 at it with ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=mock.endpoint_url`` (botocore reads it)
and dummy credentials.

- ``POST /endpoints/{name}/invocations`` (``invoke``): a ``chat.completion``: ``echo: <last user
  text>``, or, when the system prompt carries the JSON-schema instruction, a sample value of the
  schema inside a Markdown code fence (as small open models tend to answer); usage from word counts.
- ``POST /endpoints/{name}/invocations-response-stream`` (``stream``): the same answer as
  ``application/vnd.amazon.eventstream`` frames, each a ``PayloadPart`` event whose raw ``Bytes``
  payload is a piece of the container's SSE text (lines are split across parts on purpose), ending
  with a usage chunk and ``data: [DONE]``.
- An endpoint outside :attr:`SageMakerMock.endpoints` (when set) answers SageMaker's
  ``ValidationError`` "Endpoint ... not found"; :func:`error` builds any other AWS error and
  :func:`stream_error` an error event inside a stream.

Every request is recorded with the endpoint, the ``X-Amzn-SageMaker-Inference-Component`` header and
the JSON body. Frames are built here byte by byte (prelude, CRC32 of the prelude, headers, payload,
CRC32 of the message) so botocore's real event-stream parser checks them.
"""

from __future__ import annotations

import binascii
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote

from tests.support.loopback import QuietHandler, ScriptedServer
from tests.support.openai_mock import sample_for

INVOKE = "invoke"
STREAM = "stream"
_OPERATIONS = {"invocations": INVOKE, "invocations-response-stream": STREAM}
_SCHEMA_LINE = re.compile(r"^Schema \([^)]*\): (?P<schema>\{.*\})$", re.MULTILINE)

#: HTTP status SageMaker uses for each error code.
ERROR_STATUS: dict[str, int] = {
    "ValidationError": 400,
    "ThrottlingException": 400,
    "ModelError": 424,
    "ModelNotReadyException": 429,
    "ServiceUnavailable": 503,
    "InternalFailure": 500,
    "InternalDependencyException": 530,
    "AccessDeniedException": 403,
}


@dataclass
class Reply:
    """One scripted answer: ``body`` as JSON, or ``parts`` (byte pieces) as PayloadPart events, or
    ``parts`` then ``stream_error`` (an exception event, code and message) inside the stream."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    parts: list[bytes] | None = None
    stream_error: tuple[str, str] | None = None
    delay: float = 0.0
    part_delay: float = 0.0  # seconds before each event-stream frame (a trickling stream)


@dataclass
class Recorded:
    endpoint: str
    operation: str  # invoke | stream
    component: str | None
    content_type: str | None
    json: Any


def error(code: str, message: str = "mock error", **extra: Any) -> Reply:
    """An AWS JSON error botocore turns into ``ClientError`` with ``Error.Code == code`` (``extra``
    adds modeled members, e.g. ``OriginalStatusCode``/``OriginalMessage`` of a ``ModelError``)."""
    return Reply(
        status=ERROR_STATUS.get(code, 400),
        body={"Message": message, **extra},
        headers={"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/coral/com.amazon.sagemaker/"},
    )


def stream_error(parts: list[bytes], code: str = "ModelStreamError", message: str = "boom") -> Reply:
    return Reply(parts=parts, stream_error=(code, message))


def completion(text: str, *, prompt_tokens: int = 11, finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "mock",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


def sse_parts(text: str, *, prompt_tokens: int = 11, finish: str = "stop", piece: int = 37) -> list[bytes]:
    """The container's SSE answer for ``text`` (one chunk per word, then finish and usage chunks),
    cut into ``piece``-byte parts regardless of line ends, as the PayloadPart events carry it."""
    words = text.split(" ")

    def chunk(delta: dict[str, Any], reason: str | None, usage: dict[str, int] | None = None) -> bytes:
        data: dict[str, Any] = {
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "finish_reason": reason}],
        }
        if usage is not None:
            data["usage"] = usage
        return b"data: " + json.dumps(data).encode() + b"\n\n"

    body = chunk({"role": "assistant", "content": ""}, None)
    body += b"".join(chunk({"content": w if i == 0 else " " + w}, None) for i, w in enumerate(words))
    usage = {"prompt_tokens": prompt_tokens, "completion_tokens": len(words)}
    body += chunk({}, finish, {**usage, "total_tokens": prompt_tokens + len(words)})
    body += b"data: [DONE]\n\n"
    return [body[i : i + piece] for i in range(0, len(body), piece)]


# --- AWS event-stream encoding ------------------------------------------------------------------


def eventstream_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One ``application/vnd.amazon.eventstream`` message: total and headers length, CRC32 of that
    prelude, string headers (type 7), the payload, CRC32 of everything before it."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += bytes([len(raw_name)]) + raw_name + b"\x07" + len(raw_value).to_bytes(2, "big") + raw_value
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    head = prelude + struct.pack(">I", binascii.crc32(prelude) & 0xFFFFFFFF)
    body = head + encoded + payload
    return body + struct.pack(">I", binascii.crc32(body) & 0xFFFFFFFF)


def payload_part(data: bytes) -> bytes:
    headers = {":event-type": "PayloadPart", ":content-type": "application/octet-stream"}
    return eventstream_message({**headers, ":message-type": "event"}, data)


def exception_message(code: str, message: str) -> bytes:
    headers = {":exception-type": code, ":content-type": "application/json", ":message-type": "exception"}
    return eventstream_message(headers, json.dumps({"Message": message, "ErrorCode": code}).encode())


# --- the server ---------------------------------------------------------------------------------

Responder = Callable[[Recorded], Reply | dict[str, Any]]


def _answer(body: Any) -> tuple[str, int]:
    """The container's answer text for a Messages API body, and its prompt token count."""
    messages = body.get("messages") if isinstance(body, dict) else None
    messages = messages if isinstance(messages, list) else []
    words = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
    system = " ".join(str(m.get("content", "")) for m in messages if m.get("role") == "system")
    found = _SCHEMA_LINE.search(system)
    if found is not None:
        return "```json\n" + json.dumps(sample_for(json.loads(found.group("schema")))) + "\n```", words
    last = next((m for m in reversed(messages) if m.get("role") == "user"), {})
    return f"echo: {last.get('content', '')}", words


class SageMakerMock(ScriptedServer[Reply]):
    """Routes are the operations: ``invoke`` and ``stream``."""

    reply_type = Reply

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        #: Endpoint names that exist (``None``: every name exists).
        self.endpoints: set[str] | None = None
        responders: dict[str, Responder] = {INVOKE: self._default_invoke, STREAM: self._default_stream}
        super().__init__(responders, host, port)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, operation: str | None = None) -> list[Recorded]:
        return [r for r in list(self.requests) if operation is None or r.operation == operation]

    @staticmethod
    def _default_invoke(req: Recorded) -> Reply | dict[str, Any]:
        text, prompt_tokens = _answer(req.json)
        return completion(text, prompt_tokens=prompt_tokens)

    @staticmethod
    def _default_stream(req: Recorded) -> Reply | dict[str, Any]:
        text, prompt_tokens = _answer(req.json)
        return Reply(parts=sse_parts(text, prompt_tokens=prompt_tokens))

    def _reply(self, req: Recorded) -> Reply:
        if self.endpoints is not None and req.endpoint not in self.endpoints:
            return error("ValidationError", f"Endpoint {req.endpoint} of account 123456789012 not found.")
        return self._next(req.operation, req, lambda: error("UnknownOperationException", req.operation))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                _raw, body = self.read_body()
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                operation = _OPERATIONS.get(parts[-1], parts[-1])
                endpoint = unquote(parts[1]) if len(parts) == 3 and parts[0] == "endpoints" else ""
                req = Recorded(
                    endpoint,
                    operation,
                    self.headers.get("X-Amzn-SageMaker-Inference-Component"),
                    self.headers.get("Content-Type"),
                    body,
                )
                mock.requests.append(req)
                reply = mock._reply(req)
                if reply.delay and mock._stop.wait(reply.delay):
                    self.close_connection = True
                    return
                if reply.parts is None:
                    self.send_whole(reply.status, reply.body, None, reply.headers)
                    return
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("X-Amzn-SageMaker-Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.close_connection = True
                frames = [payload_part(p) for p in reply.parts]
                if reply.stream_error is not None:
                    frames.append(exception_message(*reply.stream_error))
                try:
                    for frame in frames:
                        if reply.part_delay and mock._stop.wait(reply.part_delay):
                            return
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:  # the client went away
                    pass

        return Handler
