"""What the loopback upstream stand-ins share: a threaded HTTP server with a deep listen backlog, and
scripted answers per route (FIFO, then a replaceable default responder), recorded requests, start/stop.

``tests/support/openai_mock.py`` and ``tests/support/bedrock_mock.py`` subclass :class:`ScriptedServer`
with their own reply types, default responders and request handlers.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Self, TypeVar

ReplyT = TypeVar("ReplyT")


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen() backlog: used while binding, so it must be a class attribute


class ScriptedServer(Generic[ReplyT]):
    """Subclasses set ``reply_type`` (built from a plain dict body) and implement ``_handler_class``."""

    reply_type: Callable[..., ReplyT]

    def __init__(
        self,
        responders: dict[str, Callable[[Any], ReplyT | dict[str, Any]]],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        delay: float = 0.0,
    ) -> None:
        self.requests: list[Any] = []
        self.delay = delay
        self._defaults = dict(responders)
        self._responders = dict(responders)
        self._scripts: dict[str, deque[ReplyT]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.server = LoopbackServer((host, port), self._handler_class())
        self._thread: threading.Thread | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def script(self, route: str, *replies: ReplyT | dict[str, Any]) -> None:
        """Queue answers for ``route``; when they run out, the responder answers again."""
        with self._lock:
            for r in replies:
                self._scripts[route].append(r if not isinstance(r, dict) else self.reply_type(body=r))

    def on(self, route: str, responder: Callable[[Any], ReplyT | dict[str, Any]]) -> None:
        self._responders[route] = responder

    def clear(self, route: str | None = None) -> None:
        """Drop scripted replies not consumed yet (all routes, or one)."""
        with self._lock:
            if route is None:
                self._scripts.clear()
            else:
                self._scripts.pop(route, None)

    def reset(self) -> None:
        """Forget requests, scripts, replaced responders and the global delay (to reuse one server)."""
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.delay = 0.0
            self._responders = dict(self._defaults)

    def _next(self, route: str, arg: Any, missing: Callable[[], ReplyT]) -> ReplyT:
        """The scripted reply for ``route``, else its responder's answer (``arg`` is passed to it)."""
        with self._lock:
            queue = self._scripts.get(route)
            if queue:
                return queue.popleft()
        responder = self._responders.get(route)
        if responder is None:
            return missing()
        out = responder(arg)
        return self.reply_type(body=out) if isinstance(out, dict) else out

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class QuietHandler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1, no request log, and TCP_NODELAY: headers and body go out in separate
    writes, and without it Nagle + delayed ACK add ~40 ms to every answer on loopback."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> tuple[bytes, Any]:
        """The raw request body and its JSON value (``None`` when empty or not JSON)."""
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return raw, json.loads(raw) if raw else None
        except ValueError:
            return raw, None

    def send_whole(self, status: int, body: Any, raw: bytes | None, headers: dict[str, str]) -> None:
        """One complete answer: ``raw`` bytes as they are, else ``body`` as JSON."""
        payload = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        if raw is None:
            self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def serve_standalone(mock_class: Callable[..., ScriptedServer[Any]], description: str) -> None:
    """``python -m tests.support.<mock> --port P --delay S``: print the port, then serve until killed
    (the benchmarks run the mocks in their own processes this way)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    args = parser.parse_args()
    mock = mock_class(port=args.port, delay=args.delay)
    print(mock.port, flush=True)
    mock.server.serve_forever()
