"""WSGI middleware: ``MAX_BODY_BYTES`` holds on the bytes actually read, whatever the framing.

Werkzeug checks ``Content-Length`` up front, but a body sent with ``Transfer-Encoding: chunked`` has
none: werkzeug then stops reading at the limit and hands the view a silently truncated body (a
truncated form was forwarded upstream, a truncated JSON body was "not valid JSON"). This wrapper
counts what comes off ``wsgi.input``; once the limit is reached it probes one more byte, and any byte
past the limit raises ``BodyTooLarge`` (413 ``request_too_large``). A malformed chunked framing (bad
chunk size, missing CRLF) raised by the server's parser becomes ``MalformedBody`` (400
``malformed_body``) instead of a 500, and a body that does not arrive within the request deadline
(a client trickling it, or sending nothing after the headers) ``BodyTimeout`` (408
``request_timeout``), as does a body read the server evicts near its connection cap (``ClientTooSlow``,
src/server.py). All are werkzeug HTTP exceptions, so src/errors.py answers
them in the route's JSON shape.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, RequestTimeout

try:  # the server's chunk-parsing errors (gunicorn is a runtime dependency; tests may run without it)
    from gunicorn.http.errors import ParseException as _ServerParseError
except ImportError:  # pragma: no cover
    _ServerParseError = ValueError


class BodyTooLarge(RequestEntityTooLarge):
    """More than ``MAX_BODY_BYTES`` bytes were read from the request body."""


class MalformedBody(BadRequest):
    """The body's framing (chunked transfer coding) is broken."""


class BodyTimeout(RequestTimeout):
    """The body did not arrive within the request's time (``REQUEST_DEADLINE_SECONDS``)."""


class ClientTooSlow(Exception):
    """Thrown by the server (src/server.py) into a body read it gave up on: near the connection cap
    the connection that has waited on its client longest is evicted to free a slot.  Answered as
    ``BodyTimeout`` (408) with this message.  Not an ``OSError``, so no socket-error handler on the
    way up can swallow it."""


class _ReadDeadline(Exception):
    """Raised in the reading greenlet by the gevent timer at the body's deadline."""


def _gevent_timer(sock: Any, seconds: float) -> Any:
    """A started ``gevent.Timeout`` when ``sock`` is a gevent socket or gevent has patched ``socket``
    (the service's worker, whose ``gunicorn.socket`` wraps a gevent socket), else None."""
    monkey = sys.modules.get("gevent.monkey")
    patched = monkey is not None and monkey.is_module_patched("socket")
    if not (patched or type(sock).__module__.startswith("gevent")):
        return None
    from gevent import Timeout

    timer = Timeout(seconds, _ReadDeadline())
    timer.start()
    return timer


class _CountingInput:
    def __init__(self, stream: Any, limit: int, sock: Any = None, seconds: float | None = None) -> None:
        self._stream = stream
        self._limit = limit
        self._seen = 0
        self._probed = False
        self._sock = sock
        self._seconds = seconds
        self._expires = time.monotonic() + seconds if seconds and sock is not None else None

    def _call(self, fn: Callable[..., bytes], *args: Any) -> bytes:
        previous, timer = None, None
        if self._expires is not None:
            # One read may block only for the time the request has left, so a client that sends its
            # body a byte now and then (or not at all) cannot hold a connection slot forever.  The
            # socket timeout bounds one wait for bytes; one read of the server's body reader may
            # wait many times (a byte each), so under gevent a timer bounds the whole read too.
            left = self._expires - time.monotonic()
            if left <= 0:
                raise self._timeout()
            previous = self._sock.gettimeout()
            self._sock.settimeout(left if previous is None else min(previous, left))
            timer = _gevent_timer(self._sock, left)
        try:
            return fn(*args)
        except _ServerParseError as exc:
            raise MalformedBody(f"malformed request body framing: {type(exc).__name__}") from None
        except (TimeoutError, _ReadDeadline):
            raise self._timeout() from None
        except ClientTooSlow as exc:
            raise BodyTimeout(str(exc)) from None
        finally:
            if timer is not None:
                timer.close()
            if self._expires is not None:
                self._sock.settimeout(previous)

    def _timeout(self) -> BodyTimeout:
        return BodyTimeout(f"request body not received within {self._seconds:g} s")

    def _count(self, data: bytes) -> bytes:
        self._seen += len(data)
        if self._seen > self._limit:
            raise BodyTooLarge()
        if self._seen == self._limit and not self._probed:
            # Callers (werkzeug) never ask past the limit: look for one more byte ourselves.
            self._probed = True
            if self._call(self._stream.read, 1):
                raise BodyTooLarge()
        return data

    def read(self, size: int | None = -1) -> bytes:
        if self._probed and self._seen >= self._limit:
            return b""
        return self._count(self._call(self._stream.read, size))

    def readline(self, size: int | None = -1) -> bytes:
        if self._probed and self._seen >= self._limit:
            return b""
        return self._count(self._call(self._stream.readline, size))

    def readlines(self, hint: int = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Any:
        return iter(self.readline, b"")

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class BodyLimitMiddleware:
    """Wraps ``wsgi.input`` so no route can read more than ``limit`` bytes of body, nor wait for it
    longer than ``seconds`` after the request began (under gunicorn, whose ``gunicorn.socket`` is
    the client's socket: its timeout is set to the time left around each read)."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int, seconds: float | None = None) -> None:
        self.app = app
        self.limit = limit
        self.seconds = seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            sock = environ.get("gunicorn.socket")
            environ["wsgi.input"] = _CountingInput(stream, self.limit, sock, self.seconds)
        return self.app(environ, start_response)
