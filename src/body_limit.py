"""WSGI middleware: ``MAX_BODY_BYTES`` holds on the bytes actually read, whatever the framing.

Werkzeug checks ``Content-Length`` up front, but a body sent with ``Transfer-Encoding: chunked`` has
none: werkzeug then stops reading at the limit and hands the view a silently truncated body (a
truncated form was forwarded upstream, a truncated JSON body was "not valid JSON"). This wrapper
counts what comes off ``wsgi.input``; once the limit is reached it probes one more byte, and any byte
past the limit raises ``BodyTooLarge`` (413 ``request_too_large``). A malformed chunked framing (bad
chunk size, missing CRLF) raised by the server's parser becomes ``MalformedBody`` (400
``malformed_body``) instead of a 500. Both are werkzeug HTTP exceptions, so src/errors.py answers
them in the route's JSON shape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

try:  # the server's chunk-parsing errors (gunicorn is a runtime dependency; tests may run without it)
    from gunicorn.http.errors import ParseException as _ServerParseError
except ImportError:  # pragma: no cover
    _ServerParseError = ValueError


class BodyTooLarge(RequestEntityTooLarge):
    """More than ``MAX_BODY_BYTES`` bytes were read from the request body."""


class MalformedBody(BadRequest):
    """The body's framing (chunked transfer coding) is broken."""


class _CountingInput:
    def __init__(self, stream: Any, limit: int) -> None:
        self._stream = stream
        self._limit = limit
        self._seen = 0
        self._probed = False

    def _call(self, fn: Callable[..., bytes], *args: Any) -> bytes:
        try:
            return fn(*args)
        except _ServerParseError as exc:
            raise MalformedBody(f"malformed request body framing: {type(exc).__name__}") from None

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
    """Wraps ``wsgi.input`` so no route can read more than ``limit`` bytes of body."""

    def __init__(self, app: Callable[..., Iterable[bytes]], limit: int) -> None:
        self.app = app
        self.limit = limit

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = _CountingInput(stream, self.limit)
        return self.app(environ, start_response)
