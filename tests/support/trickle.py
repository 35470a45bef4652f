"""An adversarial upstream written independently of the project's mocks: raw HTTP/1.1 over asyncio
sockets (no http.server, no shared helpers), standing in for OpenAI *and* bedrock-runtime.

It misbehaves the way a slow or broken upstream does on the wire:

- ``trickle``: a valid answer, sent one byte every ``interval`` seconds (each byte well inside any
  per-read timeout, so only a deadline over the whole exchange ends it).  For streams the first
  event is sent at once and the rest trickles, so the client has started its answer.
- ``trickle_head``: even the status line trickles (the failure comes before the first byte).
- ``fast``: the same answers at once (to warm a client up).
- ``ratelimit``: 429 with ``Retry-After: <retry_after>`` (OpenAI) / ``ThrottlingException`` (Bedrock).
- ``garbage`` / ``garbage_text``: a stream whose first event is valid, followed by binary junk /
  printable lines that are not the protocol, then the end of the answer.

The behaviour is a plain attribute (``server.mode``), so one server serves every case of a test
module.  Every request is counted per path in ``server.hits``; ``server.open_connections`` counts the
connections neither side has closed yet (a client that gives up must close its connection).
"""

from __future__ import annotations

import asyncio
import binascii
import json
import struct
import threading
import time
from collections import Counter
from typing import Any


def _sse(obj: Any) -> bytes:
    return b"data: " + (obj if isinstance(obj, bytes) else json.dumps(obj).encode()) + b"\n\n"


def _chunk(text: str | None, finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {} if text is None else {"content": text}
    return {
        "id": "chatcmpl-trickle",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _eventstream_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    """One AWS event-stream message, encoded from the format's description: a 12-byte prelude (total
    length, headers length, CRC32 of those 8 bytes), string headers (name length, name, type 7, value
    length, value), the JSON payload, CRC32 of everything before it."""
    headers = b""
    for name, value in (
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ):
        headers += (
            bytes([len(name)]) + name.encode() + b"\x07" + len(value).to_bytes(2, "big") + value.encode()
        )
    body = json.dumps(payload).encode()
    prelude = struct.pack(">II", 16 + len(headers) + len(body), len(headers))
    msg = prelude + struct.pack(">I", binascii.crc32(prelude)) + headers + body
    return msg + struct.pack(">I", binascii.crc32(msg))


def _converse_events() -> list[bytes]:
    return [
        _eventstream_frame("messageStart", {"role": "assistant"}),
        _eventstream_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "slow"}}),
        _eventstream_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " answer"}}),
        _eventstream_frame("contentBlockStop", {"contentBlockIndex": 0}),
        _eventstream_frame("messageStop", {"stopReason": "end_turn"}),
        _eventstream_frame(
            "metadata", {"usage": {"inputTokens": 3, "outputTokens": 2}, "metrics": {"latencyMs": 1}}
        ),
    ]


class TrickleUpstream:
    def __init__(self, mode: str = "trickle", *, interval: float = 0.3, retry_after: float = 30.0) -> None:
        self.mode = mode
        self.interval = interval
        self.retry_after = retry_after
        self.hits: Counter[str] = Counter()
        self.open_connections = 0  # connections not yet closed (by either side)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name="trickle-upstream")
        self._server: asyncio.base_events.Server | None = None

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def bedrock_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> TrickleUpstream:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = fut.result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def _close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    # --- wire ---------------------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ln)
                }
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    raise ValueError("this stand-in reads only Content-Length bodies")
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                body = json.loads(raw) if raw else {}
                self.hits[path] += 1
                await self._answer(writer, method, path, body)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter, data: bytes, *, trickle: bool) -> None:
        if not trickle or self.mode == "fast":
            writer.write(data)
            await writer.drain()
            return
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(self.interval)

    async def _answer(
        self, writer: asyncio.StreamWriter, method: str, path: str, body: dict[str, Any]
    ) -> None:
        bedrock = path.startswith("/model/")
        stream = path.endswith("/converse-stream") or (not bedrock and bool(body.get("stream")))
        if self.mode == "ratelimit":
            if bedrock:
                payload = json.dumps({"message": "Too many requests, please wait"}).encode()
                extra = "x-amzn-ErrorType: ThrottlingException:http://internal.amazon.com/coral/\r\n"
            else:
                payload = json.dumps(
                    {
                        "error": {
                            "message": "Rate limit reached",
                            "type": "requests",
                            "code": "rate_limit_exceeded",
                        }
                    }
                ).encode()
                extra = ""
            head = (
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                f"Retry-After: {self.retry_after:g}\r\n{extra}\r\n"
            ).encode()
            await self._send(writer, head + payload, trickle=False)
            return
        trickle_all = self.mode == "trickle_head"
        if stream:
            if bedrock:
                events = _converse_events()
                ctype = "application/vnd.amazon.eventstream"
            else:
                events = [
                    _sse(_chunk("slow")),
                    _sse(_chunk(" answer")),
                    _sse(_chunk(None, "stop")),
                    _sse(b"[DONE]"),
                ]
                ctype = "text/event-stream"
            first = 2 if bedrock else 1  # up to and including the first text
            if self.mode == "garbage":  # bytes, then the end of the answer
                events = [*events[:first], b"\x00\xffthis is not the protocol\r\n\xfe" * 4]
            elif self.mode == "garbage_text":  # printable lines that are not SSE fields
                events = [*events[:first], b"<html>502 Bad Gateway</html>\r\n\r\n" * 4]
            framing = ""
            if bedrock:  # AWS sends one event-stream message per HTTP chunk
                events = [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]
                framing = "Transfer-Encoding: chunked\r\n"
            head = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\n{framing}Connection: close\r\n\r\n".encode()
            await self._send(writer, head + b"".join(events[:first]), trickle=trickle_all)
            await self._send(writer, b"".join(events[first:]), trickle=not self.mode.startswith("garbage"))
            writer.close()
            raise ConnectionError("stream answered: connection closed")
        payload = json.dumps(self._json_answer(path, body)).encode()
        status = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
        status += "\r\n"
        if trickle_all:
            await self._send(writer, status.encode() + payload, trickle=True)
        else:
            await self._send(writer, status.encode(), trickle=False)
            await self._send(writer, payload, trickle=True)

    @staticmethod
    def _json_answer(path: str, body: dict[str, Any]) -> dict[str, Any]:
        if path.endswith("/invoke"):  # Titan embeddings
            return {"embedding": [0.6, 0.8], "inputTextTokenCount": 2}
        if path.endswith("/converse"):
            return {
                "output": {"message": {"role": "assistant", "content": [{"text": "slow answer"}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 3, "outputTokens": 2, "totalTokens": 5},
                "metrics": {"latencyMs": 1},
            }
        if path.endswith("/embeddings"):
            return {
                "object": "list",
                "model": body.get("model", "m"),
                "data": [{"object": "embedding", "index": 0, "embedding": [0.6, 0.8]}],
                "usage": {"prompt_tokens": 1, "total_tokens": 1},
            }
        return {
            "id": "chatcmpl-trickle",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "slow answer"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }


def wait_for(predicate: Any, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False
