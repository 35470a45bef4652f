"""A real loopback HTTP server that speaks enough of OpenAI's API to stand in for it.

Used by tests (in a thread) and by benchmarks (as a process: ``python -m tests.support.openai_mock``).

- ``POST /v1/chat/completions``: by default answers ``echo: <last user message>`` (``n`` choices,
  usage from word counts), or streams it as SSE when ``stream`` is true.
- ``POST /v1/embeddings``: deterministic unit vectors derived from each text (``dimensions`` honoured).
- ``GET /v1/models``: a short model list.

Script answers per route with :meth:`OpenAIMock.script` (a FIFO of :class:`Reply`; when it runs out,
the default responder answers), or replace a responder with :meth:`OpenAIMock.on`. Every request is
recorded in :attr:`OpenAIMock.requests`.
"""

from __future__ import annotations

import hashlib
import json
import math
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.support.loopback import QuietHandler, ScriptedServer, serve_standalone

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"
MODELS = "/v1/models"


@dataclass
class Reply:
    """One scripted answer. ``body`` dict -> JSON; ``raw`` bytes are sent as they are."""

    status: int = 200
    body: dict[str, Any] | list[Any] | None = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    hang: bool = False  # never answer (until the server stops)
    reset: bool = False  # close the connection without an answer
    sse: list[dict[str, Any] | str] | None = None  # stream these events (dicts are JSON-encoded)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    json: Any


def completion(
    contents: list[str] | str,
    *,
    model: str = "gpt-4o-2024-08-06",
    finish_reason: str | list[str] = "stop",
    prompt_tokens: int = 11,
    completion_tokens: int = 7,
) -> dict[str, Any]:
    """A chat.completion body with one choice per content."""
    if isinstance(contents, str):
        contents = [contents]
    reasons = finish_reason if isinstance(finish_reason, list) else [finish_reason] * len(contents)
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": i,
                "message": {"role": "assistant", "content": text},
                "finish_reason": reasons[i],
                "logprobs": None,
            }
            for i, text in enumerate(contents)
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def error(
    status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None
) -> Reply:
    return Reply(
        status=status, body={"error": {"message": message, "type": type_, "param": None, "code": code}}
    )


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


Responder = Callable[[dict[str, Any]], Reply | dict[str, Any]]


class OpenAIMock(ScriptedServer[Reply]):
    reply_type = Reply

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, delay: float = 0.0) -> None:
        models = {
            "object": "list",
            "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "openai"}
                for m in ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")
            ],
        }
        responders: dict[str, Responder] = {
            CHAT: self._default_chat,
            EMBEDDINGS: self._default_embeddings,
            MODELS: lambda _body: models,
        }
        super().__init__(responders, host, port, delay=delay)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # --- default behaviour ----------------------------------------------------------------------
    @staticmethod
    def _default_chat(body: dict[str, Any]) -> Reply | dict[str, Any]:
        messages = body.get("messages") or []
        tool_reply = _tool_reply(body)
        if tool_reply is not None:
            return tool_reply
        last = next((m for m in reversed(messages) if m.get("role") == "user"), {"content": ""})
        content = last.get("content")
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        text = f"echo: {content}"
        n = int(body.get("n") or 1)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages) + 3
        completion_tokens = len(text.split())
        if body.get("stream"):
            words = text.split(" ")
            events: list[dict[str, Any] | str] = []
            for idx in range(n):
                events.append(_chunk(body, idx, {"role": "assistant", "content": ""}, None))
                for i, w in enumerate(words):
                    events.append(_chunk(body, idx, {"content": w if i == 0 else " " + w}, None))
                events.append(_chunk(body, idx, {}, "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                events.append(
                    {
                        "id": "chatcmpl-mock",
                        "object": "chat.completion.chunk",
                        "created": 1700000000,
                        "model": body.get("model", "mock"),
                        "choices": [],
                        "usage": {
                            "prompt_tokens": prompt_tokens,
                            "completion_tokens": completion_tokens * n,
                            "total_tokens": prompt_tokens + completion_tokens * n,
                        },
                    }
                )
            events.append("[DONE]")
            return Reply(sse=events)
        return completion(
            [text] * n,
            model=str(body.get("model", "mock")),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens * n,
        )

    @staticmethod
    def _default_embeddings(body: dict[str, Any]) -> dict[str, Any]:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        dims = int(body.get("dimensions") or 8)
        tokens = sum(len(str(t).split()) for t in texts)
        return {
            "object": "list",
            "model": body.get("model", "mock"),
            "data": [
                {"object": "embedding", "index": i, "embedding": fake_vector(str(t), dims)}
                for i, t in enumerate(texts)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # --- HTTP plumbing --------------------------------------------------------------------------
    def _next_reply(self, path: str, body: dict[str, Any]) -> Reply:
        return self._next(path, body, lambda: error(404, f"mock has no route {path}"))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(QuietHandler):
            def _serve(self) -> None:
                _raw, body = self.read_body()
                body = body if body is not None else {}
                path = self.path.split("?", 1)[0]
                mock.requests.append(
                    Recorded(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body)
                )
                reply = mock._next_reply(path, body if isinstance(body, dict) else {})
                delay = reply.delay or mock.delay
                if delay:
                    time.sleep(delay)
                if reply.hang:
                    mock._stop.wait()
                    return
                if reply.reset:
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
                if reply.sse is not None:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "text/event-stream")
                    self.send_header("Cache-Control", "no-cache")
                    self.send_header("Connection", "close")
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    for event in reply.sse:
                        data = event if isinstance(event, str) else json.dumps(event)
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_whole(reply.status, reply.body, reply.raw, reply.headers)

            do_GET = _serve
            do_POST = _serve

        return Handler


def sample_for(schema: dict[str, Any]) -> Any:
    """A value that satisfies a simple JSON schema (objects, arrays, enums, scalars)."""
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return sample_for(schema["anyOf"][0])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "object":
        props = schema.get("properties") or {}
        return {k: sample_for(v) for k, v in props.items()}
    if kind == "array":
        return [sample_for(schema.get("items") or {"type": "string"})]
    return {"string": "sample", "integer": 1, "number": 1.5, "boolean": True, "null": None}.get(kind, "x")


def _tool_reply(body: dict[str, Any]) -> Reply | dict[str, Any] | None:
    """What OpenAI does with tools, schemas and logprobs, reduced to a rule: with ``tools`` and no tool
    result yet, call the chosen (or first) tool with arguments sampled from its schema; after a
    ``tool`` turn, answer ``tool said: <result>``; a ``json_schema`` format answers a sample value."""
    messages = body.get("messages") or []
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    last = messages[-1] if messages else {}
    fmt = body.get("response_format") or {}
    model = str(body.get("model", "mock"))
    if last.get("role") == "tool":
        results = []
        for m in reversed(messages):
            if m.get("role") != "tool":
                break
            results.insert(0, str(m.get("content")))
        return _answer(body, "tool said: " + "; ".join(results), model)
    if tools and choice != "none":
        if isinstance(choice, dict):
            chosen = [t for t in tools if t["function"]["name"] == choice["function"]["name"]]
        else:
            chosen = tools[: 2 if body.get("parallel_tool_calls", True) and len(tools) > 1 else 1]
        calls = [
            {
                "id": f"call_{i}_{t['function']['name']}",
                "type": "function",
                "function": {
                    "name": t["function"]["name"],
                    "arguments": json.dumps(sample_for(t["function"].get("parameters") or {})),
                },
            }
            for i, t in enumerate(chosen)
        ]
        if body.get("stream"):
            events: list[dict[str, Any] | str] = [
                _chunk(body, 0, {"role": "assistant", "content": None}, None)
            ]
            for i, c in enumerate(calls):
                args = c["function"]["arguments"]
                head = {"index": i, "id": c["id"], "type": "function"}
                head["function"] = {"name": c["function"]["name"], "arguments": ""}
                events.append(_chunk(body, 0, {"tool_calls": [head]}, None))
                half = len(args) // 2
                for piece in (args[:half], args[half:]):
                    events.append(
                        _chunk(
                            body, 0, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}, None
                        )
                    )
            events.append(_chunk(body, 0, {}, "tool_calls"))
            events.append(_usage_chunk(body, 20, 10))
            events.append("[DONE]")
            return Reply(sse=events)
        out = completion("", model=model, finish_reason="tool_calls")
        out["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": calls}
        return out
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {}
        return _answer(body, json.dumps(sample_for(schema)), model)
    if body.get("logprobs") and not body.get("stream"):
        user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        return _answer(body, f"echo: {user.get('content')}", model)
    return None


def _answer(body: dict[str, Any], text: str, model: str) -> Reply | dict[str, Any]:
    if body.get("stream"):
        return Reply(
            sse=[
                _chunk(body, 0, {"role": "assistant", "content": ""}, None),
                _chunk(body, 0, {"content": text}, None),
                _chunk(body, 0, {}, "stop"),
                _usage_chunk(body, 20, 5),
                "[DONE]",
            ]
        )
    out = completion(text, model=model)
    if body.get("logprobs"):
        top = int(body.get("top_logprobs") or 0)
        out["choices"][0]["logprobs"] = {
            "content": [
                {
                    "token": w,
                    "logprob": -0.25,
                    "bytes": list(w.encode()),
                    "top_logprobs": [{"token": w, "logprob": -0.25, "bytes": list(w.encode())}] * top,
                }
                for w in text.split(" ")
            ],
            "refusal": None,
        }
    return out


def _usage_chunk(body: dict[str, Any], prompt: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": body.get("model", "mock"),
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def _chunk(body: dict[str, Any], index: int, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": body.get("model", "mock"),
        "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def main() -> None:
    serve_standalone(OpenAIMock, "Loopback OpenAI stand-in for benchmarks.")


if __name__ == "__main__":
    main()
