"""An OpenAI stand-in written independently of ``tests/support/openai_mock.py``, on aiohttp (asyncio).

Why a second stand-in: figures and tests measured against one mock can depend on that mock (its
threading, backlog, keep-alive handling). This one shares no code with the project's own stand-in and
runs as its own process, so a benchmark or an end-to-end test can be run against both.

    python -m tests.support.aiohttp_openai [--port 0] [--delay 0] [--host 127.0.0.1]

prints the port it listens on as the first line of stdout once it accepts connections.

Routes (OpenAI wire format, as the official SDK parses it):

- ``POST /v1/chat/completions``: answers ``You said: <last user text>`` (``n`` choices, usage from
  word counts); with ``"stream": true`` an SSE stream: a role chunk, one chunk per word, a finish chunk,
  a usage chunk (empty ``choices``) when ``stream_options.include_usage`` is true, then ``[DONE]``.
- ``POST /v1/embeddings``: deterministic unit vectors (same text, same vector; ``dimensions`` honoured,
  ``encoding_format`` float or base64).
- ``GET /v1/models``: a short list.

Delay: every model route waits ``delay`` seconds (``--delay``, the ``AIOHTTP_OPENAI_DELAY`` environment
variable, or at run time ``POST /_control {"delay": s}``); a request's ``X-Mock-Delay`` header
overrides it for that request. A plain answer waits the whole delay before answering; a stream sends
its role chunk at once and spreads the delay evenly over the remaining chunks, so a 30-s stream is a
connection that stays open and busy for 30 s.

Accounting: ``GET /_stats`` answers ``{"in_flight", "max_in_flight", "requests", "by_path"}``, where
``max_in_flight`` is the most model requests this process was serving at one moment (a stream counts
until its last byte). ``POST /_reset`` zeroes the counters. A request without
``Authorization: Bearer ...`` is a 401 with OpenAI's error body.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import resource
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small")
DEFAULT_DIMENSIONS = 16


class Stats:
    """In-flight accounting for the model routes (single event loop: no lock needed)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.max_in_flight = 0
        self.by_path: Counter[str] = Counter()

    def enter(self, path: str) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.by_path[path] += 1

    def leave(self) -> None:
        self.in_flight -= 1

    def reset(self) -> None:
        self.max_in_flight = self.in_flight
        self.by_path.clear()

    def as_dict(self) -> dict[str, Any]:
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "requests": sum(self.by_path.values()),
            "by_path": dict(self.by_path),
        }


def _oai_error(status: int, message: str, type_: str, param: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": type_, "param": param, "code": None}}
    return web.json_response(body, status=status)


def _words(text: str) -> int:
    return len(text.split())


def _user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
            return str(content or "")
    return ""


def unit_vector(text: str, dimensions: int) -> list[float]:
    """Deterministic: seeded by the text, so the same text always gets the same vector."""
    rng = random.Random(text)
    raw = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


class StandIn:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.stats = Stats()

    def _delay_for(self, request: web.Request) -> float:
        header = request.headers.get("X-Mock-Delay")
        return float(header) if header else self.delay

    # --- middleware: auth and in-flight accounting --------------------------------------------------
    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _oai_error(401, "Missing bearer authentication in header", "invalid_request_error")
        self.stats.enter(request.path)
        try:
            return await handler(request)
        finally:
            self.stats.leave()

    async def _json(self, request: web.Request) -> dict[str, Any] | web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _oai_error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error"
            )
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return _oai_error(400, "you must provide a model parameter", "invalid_request_error", "model")
        return body

    # --- routes ---------------------------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _oai_error(400, "messages must be a non-empty array", "invalid_request_error", "messages")
        text = f"You said: {_user_text(messages)}"
        prompt_tokens = sum(_words(json.dumps(m.get("content"))) for m in messages if isinstance(m, dict))
        delay = self._delay_for(request)
        ident = f"chatcmpl-aio{time.monotonic_ns()}"
        if body.get("stream"):
            options = body.get("stream_options")
            usage = isinstance(options, dict) and bool(options.get("include_usage"))
            return await self._stream(request, body["model"], ident, text, prompt_tokens, delay, usage)
        if delay:
            await asyncio.sleep(delay)
        n = body.get("n") or 1
        return web.json_response(
            {
                "id": ident,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": text, "refusal": None},
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                    for i in range(int(n))
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": _words(text) * int(n),
                    "total_tokens": prompt_tokens + _words(text) * int(n),
                },
            }
        )

    async def _stream(
        self,
        request: web.Request,
        model: str,
        ident: str,
        text: str,
        prompt_tokens: int,
        delay: float,
        usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        created = int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            return {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        pieces = text.split(" ")
        events: list[dict[str, Any]] = [chunk({"role": "assistant", "content": ""}, None)]
        events += [chunk({"content": p if i == 0 else " " + p}, None) for i, p in enumerate(pieces)]
        events.append(chunk({}, "stop"))
        if usage:
            events.append(
                {
                    "id": ident,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(pieces),
                        "total_tokens": prompt_tokens + len(pieces),
                    },
                }
            )
        gap = delay / (len(events) - 1)
        for i, event in enumerate(events):
            if i and gap:
                await asyncio.sleep(gap)
            await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self._json(request)
        if isinstance(body, web.Response):
            return body
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _oai_error(
                400, "input must be a string or an array of strings", "invalid_request_error", "input"
            )
        dimensions = int(body.get("dimensions") or DEFAULT_DIMENSIONS)
        delay = self._delay_for(request)
        if delay:
            await asyncio.sleep(delay)
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = unit_vector(text, dimensions)
            encoded: Any = (
                base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
            )
            data.append({"object": "embedding", "index": i, "embedding": encoded})
        tokens = sum(_words(t) for t in texts)
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def models(self, request: web.Request) -> web.StreamResponse:
        delay = self._delay_for(request)
        if delay:
            await asyncio.sleep(delay)
        data = [{"id": m, "object": "model", "created": 1715367049, "owned_by": "system"} for m in MODELS]
        return web.json_response({"object": "list", "data": data})

    # --- control --------------------------------------------------------------------------------------
    async def stats_route(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.stats.as_dict())

    async def reset_route(self, request: web.Request) -> web.StreamResponse:
        self.stats.reset()
        return web.json_response(self.stats.as_dict())

    async def control_route(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.delay = float(body.get("delay", self.delay))
        return web.json_response({"delay": self.delay})

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get("/_stats", self.stats_route)
        app.router.add_post("/_reset", self.reset_route)
        app.router.add_post("/_control", self.control_route)
        return app


async def _serve(host: str, port: int, delay: float, backlog: int) -> None:
    runner = web.AppRunner(StandIn(delay).app(), access_log=None, handle_signals=True)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock, backlog=backlog)
    await site.start()
    print(sock.getsockname()[1], flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=float(os.environ.get("AIOHTTP_OPENAI_DELAY", "0")))
    parser.add_argument(
        "--backlog", type=int, default=4096, help="listen() backlog (aiohttp's own default is 128)"
    )
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # one descriptor per connection: thousands of concurrent streams need them
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(_serve(args.host, args.port, args.delay, args.backlog))


class AiohttpOpenAI:
    """The stand-in as a child process: ``with AiohttpOpenAI(delay=1) as mock: mock.base_url``."""

    def __init__(self, delay: float = 0.0, backlog: int = 4096) -> None:
        self.delay = delay
        self.backlog = backlog
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> AiohttpOpenAI:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.aiohttp_openai",
                "--delay",
                str(self.delay),
                "--backlog",
                str(self.backlog),
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip():
            self.stop()
            raise RuntimeError("the aiohttp OpenAI stand-in did not start")
        self.port = int(line)
        return self

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as resp:
            result: dict[str, Any] = json.loads(resp.read())
        return result

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/_stats")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/_reset", {})

    def set_delay(self, seconds: float) -> None:
        self._call("POST", "/_control", {"delay": seconds})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> AiohttpOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
