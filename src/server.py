"""The gunicorn worker aiproxy runs under (``worker_class`` in src/gunicorn_conf.py).

gunicorn's gevent worker, with three changes:

- **JSON for the server's own errors.** A request gunicorn cannot parse (garbage request line,
  header without colon, obs-fold, two Content-Length, Content-Length with Transfer-Encoding, request
  line over ``limit_request_line``, a header over ``limit_request_field_size``, more than
  ``limit_request_fields`` headers) is answered ``{"error": "...", "kind": "..."}`` with 400 / 414 /
  431 (and 501, 417, 408, 500 for the rarer cases) instead of gunicorn's HTML page. The log line names
  the error class only: gunicorn's message quotes the offending header, which may hold a key.
- **Slow clients cannot take the connection slots.** Waiting for the first byte of a request (a new
  connection or an idle keep-alive one) is limited by ``keepalive``; from the first byte, the whole
  request line and headers must arrive within ``GUNICORN_HEADER_TIMEOUT`` seconds (408 JSON
  otherwise); its body within ``REQUEST_DEADLINE_SECONDS`` (src/body_limit.py). When a worker's open
  connections come within ``reserve`` of ``worker_connections``, every new connection evicts the one
  that has been waiting on its client the longest: idle (closed), reading headers, or blocked in a
  body read (both answered 408 JSON ``request_timeout``, then closed), so the pool never fills with
  slow sockets and a health check is always accepted. A connection is a candidate only while it
  waits on its client (``_WatchedBody`` marks the app's body reads); a request waiting on its
  upstream (a 10-60 s LLM call) or streaming its answer is never shed. The choice is O(1): one
  ordered dict, oldest wait first (a body read counts from when it began, so trickling bytes does
  not make an attacker look fresh).
  An unread request body left behind by a response is drained at most 16 MiB / the header timeout;
  beyond that the connection closes instead of serving another request on it.
- **Fail closed on the real bind.** With no ``AIPROXY_API_KEY`` the worker refuses to serve if any of
  its listening sockets is not loopback, whatever the bind came from (src/gunicorn_conf.py checks the
  configured addresses first; this checks the sockets actually open).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import socket
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import gevent
from gunicorn import http, util
from gunicorn.http import errors as herr
from gunicorn.workers.ggevent import GeventWorker

from src.accept_share import FairAccept, FairStreamServer, Scoreboard
from src.body_limit import ClientTooSlow

log = logging.getLogger("aiproxy.server")

DEFAULT_HEADER_TIMEOUT = 10.0

IDLE, HEADERS, BODY, BUSY = "idle", "headers", "body", "busy"
# Unread body bytes drained after a response (e.g. a 413 to a client still sending, which reads
# the answer only once its body is sent); bounded by the header timeout too.
_DRAIN_MAX_BYTES = 16 * 1024 * 1024
# An evicted connection's 408 is sent, then only what its client already sent is drained (no wait):
# its slot is what the new connection needs now.
_EVICTED_WAIT = 0.0
_EVICTED_MESSAGE = "request {} too slow: connection closed to free a slot for other clients"


def header_timeout_from_env() -> float:
    raw = os.environ.get("GUNICORN_HEADER_TIMEOUT", "")
    try:
        value = float(raw) if raw else DEFAULT_HEADER_TIMEOUT
    except ValueError:
        raise SystemExit(f"aiproxy: GUNICORN_HEADER_TIMEOUT={raw!r} is not a number of seconds") from None
    if value <= 0:
        raise SystemExit("aiproxy: GUNICORN_HEADER_TIMEOUT must be > 0")
    return value


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _json_error(status: int, reason: str, kind: str, message: str) -> bytes:
    body = json.dumps({"error": message, "kind": kind}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    return head + body


# exception class -> (status, reason, kind, message); first match wins (subclasses before bases).
_CLIENT_ERRORS: list[tuple[type[BaseException], int, str, str, str]] = [
    (herr.LimitRequestLine, 414, "URI Too Long", "uri_too_long", "request line too long"),
    (
        herr.LimitRequestHeaders,
        431,
        "Request Header Fields Too Large",
        "headers_too_large",
        "request headers too large",
    ),
    (herr.InvalidRequestLine, 400, "Bad Request", "malformed_http", "malformed request line"),
    (herr.InvalidRequestMethod, 400, "Bad Request", "malformed_http", "invalid request method"),
    (herr.InvalidHTTPVersion, 400, "Bad Request", "malformed_http", "invalid HTTP version"),
    (herr.ObsoleteFolding, 400, "Bad Request", "malformed_http", "obsolete header line folding"),
    (herr.InvalidHeaderName, 400, "Bad Request", "malformed_http", "invalid header name"),
    (herr.InvalidHeader, 400, "Bad Request", "malformed_http", "malformed header"),
    (herr.InvalidChunkSize, 400, "Bad Request", "malformed_body", "malformed chunked body"),
    (herr.ChunkMissingTerminator, 400, "Bad Request", "malformed_body", "malformed chunked body"),
    (herr.InvalidChunkExtension, 400, "Bad Request", "malformed_body", "malformed chunked body"),
    (
        herr.UnsupportedTransferCoding,
        501,
        "Not Implemented",
        "unsupported_transfer_coding",
        "unsupported transfer coding",
    ),
    (herr.ExpectationFailed, 417, "Expectation Failed", "expectation_failed", "unsupported Expect header"),
    (herr.InvalidSchemeHeaders, 400, "Bad Request", "malformed_http", "contradictory scheme headers"),
    (herr.InvalidProxyLine, 400, "Bad Request", "malformed_http", "invalid PROXY protocol line"),
    (herr.InvalidProxyHeader, 400, "Bad Request", "malformed_http", "invalid PROXY protocol header"),
    (herr.ForbiddenProxyRequest, 403, "Forbidden", "forbidden", "PROXY protocol not allowed from this peer"),
    (herr.ParseException, 400, "Bad Request", "malformed_http", "malformed HTTP request"),
]


def error_for(exc: BaseException) -> tuple[int, str, str, str]:
    """(status, reason, kind, message) the server answers for an exception raised while parsing."""
    if isinstance(
        exc, herr.InvalidResponseHeader | herr.InvalidResponseHeaderName | herr.ConfigurationProblem
    ):
        return 500, "Internal Server Error", "internal", "internal error"
    for cls, status, reason, kind, message in _CLIENT_ERRORS:
        if isinstance(exc, cls):
            detail = ""
            if isinstance(exc, herr.LimitRequestLine) and getattr(exc, "max_size", None):
                detail = f" (limit {exc.max_size} bytes)"
            return status, reason, kind, message + detail
    return 500, "Internal Server Error", "internal", "internal error"


class _HeaderTimeout(Exception):
    pass


class _Conn:
    __slots__ = ("evicted", "glet", "sock", "state")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.state = IDLE
        self.evicted = False
        self.glet: Any = None  # the greenlet waiting on the client (headers or a body read)

    def shed(self) -> None:
        # The connection's greenlet is blocked reading: shutting the socket down makes that read
        # return end-of-file, so it ends through its ordinary path (no exception thrown into it).
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


class AIProxyWorker(GeventWorker):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.header_timeout = header_timeout_from_env()
        self.idle_timeout = float(self.cfg.keepalive) or self.header_timeout
        # Free slots kept per worker: new connections shed idle ones at this watermark.
        self.reserve = max(2, self.worker_connections // 50)
        self.conns: dict[int, _Conn] = {}
        # Connections waiting on their client (for a request, its headers or a body read),
        # longest-waiting first.
        self.sheddable: OrderedDict[int, _Conn] = OrderedDict()
        self.shed_total = 0
        self._last_shed_log = 0.0
        self.hub: Any = None  # the worker's gevent hub (set in run, after the fork)
        #: Open connections per worker, shared by all (src/accept_share.py); set by the post_fork hook.
        self.board: Scoreboard | None = None

    # --- start-up --------------------------------------------------------------------------------

    def init_process(self) -> None:
        self._refuse_open_service_off_loopback()
        super().init_process()

    def _refuse_open_service_off_loopback(self) -> None:
        from lib.settings import SettingsError, load_settings

        try:
            settings = load_settings()
        except SettingsError:
            return  # the app start-up reports it (and the arbiter's on_starting did already)
        if settings.api_keys:
            return
        for s in self.sockets:
            name = s.getsockname()
            host = name[0] if isinstance(name, tuple) else str(name)
            if not isinstance(name, tuple) or not is_loopback(host):
                sys.stderr.write(
                    f"aiproxy: refusing to serve without AIPROXY_API_KEY on non-loopback socket {name!r}.\n"
                )
                sys.stderr.flush()
                sys.exit(self.cfg.WORKER_BOOT_ERROR if hasattr(self.cfg, "WORKER_BOOT_ERROR") else 3)

    def run(self) -> None:
        self.hub = gevent.get_hub()
        gevent.spawn(self._close_idle_on_shutdown)
        if self.board is not None and self.cfg.workers > 1:
            # GeventWorker.run builds its servers from this module name; in this (worker) process
            # they become servers that leave a burst's connections to a less busy peer.
            from gunicorn.workers import ggevent

            fair = FairAccept(self.board, lambda: len(self.conns))
            ggevent.StreamServer = type("FairServer", (FairStreamServer,), {"fair": fair})
            # Counted by the peers from now on, when this worker is about to accept (not while it
            # was loading the app after the fork), until it stops accepting.
            self.board.claim(self.age)
        try:
            super().run()
        finally:
            if self.board is not None:
                self.board.release()

    def notify(self) -> None:
        super().notify()
        if self.board is not None:
            self.board.publish(len(self.conns))  # also the slot's heartbeat (every second)

    def _close_idle_on_shutdown(self) -> None:
        while self.alive:
            gevent.sleep(0.5)
        if self.board is not None:
            self.board.release()  # no longer accepting: peers must not leave connections to it
        for conn in list(self.conns.values()):
            if conn.state == IDLE:
                conn.shed()

    # --- connections -----------------------------------------------------------------------------

    def _enter(self, conn: _Conn, state: str) -> None:
        conn.state = state
        self.sheddable.pop(id(conn), None)
        if state != BUSY and not conn.evicted:
            self.sheddable[id(conn)] = conn  # last: the newest wait

    def _admit(self, conn: _Conn) -> None:
        self.conns[id(conn)] = conn
        if self.board is not None:
            self.board.publish(len(self.conns))
        excess = len(self.conns) - (self.worker_connections - self.reserve)
        victims = 0
        while excess > 0 and self.sheddable:
            _, victim = self.sheddable.popitem(last=False)
            self._evict(victim)
            victims += 1
            excess -= 1
        self._enter(conn, IDLE)
        self.shed_total += victims
        now = time.monotonic()
        if victims and now - self._last_shed_log > 10:
            self._last_shed_log = now
            self.log.warning(
                "connection slots nearly full (%d of %d): closed connections waiting on slow clients, "
                "%d so far",
                len(self.conns),
                self.worker_connections,
                self.shed_total,
            )

    def _evict(self, victim: _Conn) -> None:
        """Free ``victim``'s slot (it is no longer a candidate). An idle connection is simply closed;
        one blocked reading headers or a body is interrupted from the hub (``_interrupt``), so its own
        greenlet answers 408 and closes."""
        victim.evicted = True
        if victim.state == IDLE or self.hub is None:
            victim.shed()
        else:
            self.hub.loop.run_callback(self._interrupt, victim)

    def _interrupt(self, conn: _Conn) -> None:
        """Runs in the hub, so ``conn``'s greenlet is suspended: if it is still waiting on its client
        it is inside that read, and the exception lands there (as a ``gevent.Timeout`` would). If its
        wait ended meanwhile it is left alone: it may be calling its upstream now."""
        glet = conn.glet
        if conn.state in (HEADERS, BODY) and glet is not None and not glet.dead:
            part = "headers" if conn.state == HEADERS else "body"
            glet.throw(ClientTooSlow(_EVICTED_MESSAGE.format(part)))
        elif conn.state == IDLE:
            conn.shed()
        else:
            conn.evicted = False  # being served: a candidate again once it waits on its client

    def handle(self, listener: Any, client: Any, addr: Any) -> None:
        client.setblocking(1)
        conn = _Conn(client)
        conn.glet = gevent.getcurrent()
        self._admit(conn)
        try:
            self._serve(listener, client, addr, conn)
        finally:
            self.conns.pop(id(conn), None)
            self.sheddable.pop(id(conn), None)
            if self.board is not None:
                self.board.publish(len(self.conns))
            if conn.evicted and conn.state == BUSY:  # the app's 408 to an evicted body read may be in flight
                self._close_gently(client, _EVICTED_WAIT)
            util.close(client)

    def _wait_first_byte(self, client: Any, parser: Any) -> bool:
        """Wait (idle) for the next request to start; False on timeout or end of file. What arrives
        goes to the parser's buffer (one ``recv`` serves both: no peek, then a second read)."""
        unreader = parser.unreader
        if unreader.buf.getbuffer().nbytes:
            return True
        client.settimeout(self.idle_timeout)
        try:
            data = client.recv(unreader.mxchunk)
        except TimeoutError:
            return False
        finally:
            client.settimeout(None)
        if not data:
            return False
        unreader.unread(data)
        return True

    def _serve(self, listener: Any, client: Any, addr: Any, conn: _Conn) -> None:
        req = None
        try:
            parser = http.get_parser(self.cfg, client, addr)
            listener_name = listener.getsockname()
            while True:
                if req is not None:
                    self._enter(conn, IDLE)
                    # An unread body left by the previous response: drain a little, else close.
                    if not parser.finish_body(
                        deadline=time.monotonic() + self.header_timeout, max_bytes=_DRAIN_MAX_BYTES
                    ):
                        return
                    if not self.alive or not self.cfg.keepalive:
                        return
                req = None
                if not self._wait_first_byte(client, parser):
                    return
                if b"\r\n\r\n" in parser.unreader.buf.getvalue():
                    # The whole head has arrived (the usual case): parsing it cannot wait on the
                    # client, so it needs neither the header timer nor a shedding slot.
                    req = next(parser)
                else:
                    self._enter(conn, HEADERS)
                    timer = gevent.Timeout(self.header_timeout, _HeaderTimeout())
                    timer.start()
                    try:
                        req = next(parser)
                    finally:
                        timer.close()
                if not req:
                    return
                self._enter(conn, BUSY)
                body, req.body = req.body, _WatchedBody(req, self, conn)
                out = _CoalescingSocket(client)
                try:
                    self.handle_request(listener_name, req, out, addr)
                finally:
                    req.body = body  # the parser drains what is left through gunicorn's own
                    out.flush()
        except ClientTooSlow as exc:  # evicted while sending headers (a body read answers in the app)
            self._write(
                client, _json_error(408, "Request Timeout", "request_timeout", str(exc)), _EVICTED_WAIT
            )
        except _HeaderTimeout:
            self._write(
                client,
                _json_error(
                    408,
                    "Request Timeout",
                    "request_timeout",
                    f"request headers not received within {self.header_timeout:g} s",
                ),
            )
        except (StopIteration, http.errors.NoMoreData):
            return
        except OSError as exc:
            if exc.errno not in (None, 9, 32, 104, 107):  # EBADF, EPIPE, ECONNRESET, ENOTCONN
                self.log.exception("Socket error processing request.")
        except Exception as exc:  # noqa: BLE001 - every parse error becomes a JSON answer
            self.handle_error(req, client, addr, exc)

    def handle_error(self, req: Any, client: Any, addr: Any, exc: BaseException) -> None:
        status, reason, kind, message = error_for(exc)
        ip = (addr or ("", -1))[0] if isinstance(addr, tuple) else ""
        if status >= 500:
            self.log.exception("Error handling request (%s)", type(exc).__name__)
        else:
            # Class name only: gunicorn's message quotes the offending bytes (maybe a key).
            self.log.warning("Invalid request from ip=%s: %s -> %d", ip, type(exc).__name__, status)
        self._write(client, _json_error(status, reason, kind, message))

    def _write(self, client: Any, data: bytes, wait: float = 0.5) -> None:
        """Send an error answer, then close gracefully (within 2 s in all)."""
        try:
            with gevent.Timeout(2.0, False):
                client.sendall(data)
                self._close_gently(client, wait)
        except OSError:
            self.log.debug("Failed to send error message.")

    @staticmethod
    def _close_gently(client: Any, wait: float) -> None:
        """Half-close, then read what the client still sends (a little, each read waiting at most
        ``wait`` s; 0: only what has arrived): closing with unread request bytes in the receive
        buffer makes the kernel send a reset, which can destroy the answer in flight."""
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
            client.settimeout(wait)
            drained = 0
            while drained < 256 * 1024:
                chunk = client.recv(65536)
                if not chunk:
                    break
                drained += len(chunk)


class _CoalescingSocket:
    """The client socket as gunicorn answers through it, sending a sized response's head together
    with its body: gunicorn writes them with two ``sendall`` calls, and each send on a fast link
    costs a delivery and a wake-up of the client. A head with ``Content-Length`` is held until the
    body's first write (or the end of the request, for an empty body); any other head (a stream)
    goes out at once. Every other use of the socket sends what is held first."""

    __slots__ = ("_held", "_sock")

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._held: bytes | None = None

    def sendall(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n" and b"\r\ncontent-length:" in data.lower():
            self._held = data
            return
        self._sock.sendall(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._sock.sendall(held)

    def __getattr__(self, name: str) -> Any:
        self.flush()
        return getattr(self._sock, name)


class _WatchedBody:
    """The request body as the app reads it (``wsgi.input``): while a read waits on the client the
    connection is a shedding candidate (``BODY``, newest wait last), between reads it is busy. A read
    the worker evicts raises ``ClientTooSlow`` (src/body_limit.py answers 408) and the connection
    closes after the answer. Reads off the worker's event loop (an OS thread) are passed through."""

    def __init__(self, req: Any, worker: AIProxyWorker, conn: _Conn) -> None:
        self._req = req
        self._body = req.body
        self._worker = worker
        self._conn = conn

    def _wait(self, read: Callable[[int | None], bytes], size: int | None) -> bytes:
        glet = gevent.getcurrent()
        if getattr(glet, "parent", None) is not self._worker.hub:
            return read(size)
        conn = self._conn
        conn.glet = glet
        self._worker._enter(conn, BODY)
        try:
            return read(size)
        except ClientTooSlow:
            self._req.must_close = True
            raise
        finally:
            if conn.state == BODY:
                self._worker._enter(conn, BUSY)

    def read(self, size: int | None = None) -> bytes:
        return self._wait(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._wait(self._body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> _WatchedBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line
