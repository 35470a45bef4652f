"""An ``httpx2`` transport whose every socket operation respects the request deadline.

``DeadlineTransport`` is ``httpx2.HTTPTransport`` (same connection pool, same TLS defaults) on a
network backend whose streams re-arm the socket timeout before each connect, read and write to
``min(timeout asked for, time left)``, where the time left comes from the deadline bound to the
calling thread or greenlet (``lib.providers.deadline.bind``).  With no deadline bound it behaves like
the stock transport.  When the deadline has passed it raises the ``httpcore2`` timeout of that
operation at once, which the SDK reports as ``APITimeoutError`` (and a stream read as
``httpx2.ReadTimeout``), so a trickling upstream ends at the deadline, not at the last byte.
See ``lib.providers.deadline`` for the design.

Idle-connection probe without a hub switch: on every pool update (each request's start and end),
``httpcore2`` asks each idle pooled connection whether its socket is readable (the server closed
it), while holding the pool's lock. It asks with ``select.poll().poll(0)``, which gevent's patched
``select`` turns into a wait on the hub: each probe let the worker's other greenlets run a loop
iteration while the lock stayed held, and every other upstream call of the worker queued on that
lock, once per idle connection (issue 12: in-flight calls serialised against an aiohttp stand-in;
here 8 probes made 16 greenlet switches, and worker CPU per call in a 1,000-call burst fell from
about 4.1 to 3.4 ms without them). ``DeadlineStream`` answers the probe with the original ``poll``:
one non-blocking syscall, no switch (``is_readable``).

One send per request: ``httpcore2`` writes a request's head and its body with two ``send`` calls,
and on loopback or a fast link each send is delivered at once (the kernel runs the receiver's TCP
path inside the sender's syscall and wakes it twice). ``DeadlineStream`` holds writes until the
request is complete (h11 ends a sized body with an empty write), the next read, or 64 KiB, and sends
them as one: in the worker profile the sends were a quarter of the CPU of a proxied call.

Limit: when the environment names a proxy (``HTTPS_PROXY`` and friends), ``httpx2`` sends through its
own proxy transport, not this one; the deadline then bounds each read, not the whole answer.
"""

from __future__ import annotations

import functools
import select
import ssl
import sys
from collections.abc import Callable, Iterable
from typing import Any

import httpcore2
import httpx2

from lib.providers.deadline import current


@functools.cache
def _original_poll() -> Callable[[], Any]:
    """``select.poll`` as the OS provides it, even when gevent has patched ``select`` (looked up on
    first use: the gevent worker patches before the app imports this module)."""
    if "gevent.monkey" in sys.modules:
        from gevent.monkey import get_original

        poll: Callable[[], Any] = get_original("select", "poll")
        return poll
    return select.poll


def is_readable(sock: Any) -> bool:
    """True when ``sock`` has data or end-of-file waiting: for an idle keep-alive connection, the
    server closed it. A zero-timeout ``poll`` syscall that never yields to the gevent hub (the
    caller holds the connection pool's lock)."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True  # closed: the next read returns end-of-file
    probe = _original_poll()()
    probe.register(fd, select.POLLIN)
    return bool(probe.poll(0))


#: Writes held back are sent once they reach this size.
_COALESCE_BYTES = 64 * 1024


class DeadlineStream(httpcore2.NetworkStream):
    __slots__ = ("_pending", "_stream")

    def __init__(self, stream: httpcore2.NetworkStream) -> None:
        self._stream = stream
        self._pending: list[bytes] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        deadline = current()
        if deadline is not None:
            timeout = deadline.clamp(timeout)
            if timeout is None:
                raise httpcore2.ReadTimeout("request deadline passed")
        if self._pending:
            self._flush(timeout)
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        deadline = current()
        if deadline is not None:
            timeout = deadline.clamp(timeout)
            if timeout is None:
                self._pending.clear()
                raise httpcore2.WriteTimeout("request deadline passed")
        if buffer:
            self._pending.append(buffer)
            if sum(map(len, self._pending)) < _COALESCE_BYTES:
                return
        if self._pending:
            self._flush(timeout)

    def _flush(self, timeout: float | None) -> None:
        data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._stream.write(data, timeout)

    def close(self) -> None:
        self._pending.clear()
        self._stream.close()

    def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        deadline = current()
        if deadline is not None:
            timeout = deadline.clamp(timeout)
            if timeout is None:
                raise httpcore2.ConnectTimeout("request deadline passed")
        if self._pending:  # a tunnel's CONNECT must reach the proxy before the handshake
            self._flush(timeout)
        return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_readable(self._stream.get_extra_info("socket"))
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore2.NetworkBackend):
    def __init__(self, backend: httpcore2.NetworkBackend | None = None) -> None:
        self._backend = backend or httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        deadline = current()
        if deadline is not None:
            timeout = deadline.clamp(timeout)
            if timeout is None:
                raise httpcore2.ConnectTimeout("request deadline passed")
        return DeadlineStream(self._backend.connect_tcp(host, port, timeout, local_address, socket_options))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        return DeadlineStream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class DeadlineTransport(httpx2.HTTPTransport):
    """``httpx2.HTTPTransport(limits=...)`` whose connection pool uses ``DeadlineBackend``."""

    def __init__(self, *, limits: httpx2.Limits, backend: httpcore2.NetworkBackend | None = None) -> None:
        super().__init__(limits=limits)
        # HTTPTransport offers no network_backend argument; its pool is the one attribute it uses.
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=DeadlineBackend(backend),
        )
