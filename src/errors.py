"""The one place that maps errors to HTTP statuses and JSON bodies.

- ``lib.errors`` kinds -> statuses via ``STATUS_BY_KIND``.
- Werkzeug HTTP errors (404, 405, 413, ...) -> the same JSON shape, never an HTML page; a body over
  ``MAX_BODY_BYTES`` whatever its framing and a malformed chunked body come from src/body_limit.py.
- Errors the HTTP server answers before the app runs (malformed request line or headers, limits,
  header timeout) are written as JSON by src/server.py.
- Anything unexpected -> 500 JSON with the request id (and the traceback in the log, not the body).

Native routes answer ``{"error": "<message>", "kind": "<kind>", "field"?: "<field>", "request_id"}``;
the OpenAI-compatible ``/v1`` routes answer OpenAI's shape ``{"error": {"message", "type", "code",
"param"}}`` so the official SDK surfaces the message.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Flask, Response, g, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from lib.errors import AIProxyError
from src.body_limit import MalformedBody

log = logging.getLogger("aiproxy.errors")

STATUS_BY_KIND: dict[str, int] = {
    "invalid_request": 400,
    "unknown_model": 400,
    "content_policy": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "budget_exceeded": 429,
    "context_too_long": 413,
    "output_truncated": 413,
    "rate_limited": 429,
    "quota": 429,
    "upstream_authentication": 502,
    "invalid_upstream_response": 502,
    "invalid_model_answer": 502,
    "upstream_unavailable": 503,
    "provider_not_installed": 503,
    "capacity": 503,
    "keys_disabled": 503,
    "database_unavailable": 503,
    "timeout": 504,
}

_KIND_BY_HTTP: dict[int, str] = {
    400: "invalid_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "request_too_large",
    415: "unsupported_media_type",
}


def openai_error_body(message: str, kind: str, field: str | None = None) -> dict[str, Any]:
    """OpenAI's error object, the same for a non-streamed answer and an in-band stream error:
    ``type`` and ``code`` are the aiproxy kind, ``param`` the offending field (or null)."""
    return {"error": {"message": message, "type": kind, "code": kind, "param": field}}


def error_response(
    status: int,
    message: str,
    kind: str,
    *,
    field: str | None = None,
    retry_after: float | None = None,
) -> Response:
    request_id = getattr(g, "request_id", None)
    if request.path.startswith("/v1/"):
        body: dict[str, Any] = openai_error_body(message, kind, field)
    else:
        body = {"error": message, "kind": kind}
        if field:
            body["field"] = field
    if request_id:
        body["request_id"] = request_id
    resp = jsonify(body)
    resp.status_code = status
    if retry_after is not None:
        resp.headers["Retry-After"] = str(max(1, math.ceil(retry_after)))
    if status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="aiproxy"'
    g.error_kind = kind
    return resp


def validation_message(exc: ValidationError) -> tuple[str, str | None]:
    """Name the offending field(s) without echoing the submitted values."""
    parts = []
    first_field = None
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if p not in ("body",))
        first_field = first_field or (loc or None)
        msg = str(err["msg"]).removeprefix("Value error, ")  # our own validators' messages stand alone
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "invalid request: " + "; ".join(parts[:5]), first_field


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(AIProxyError)
    def _aiproxy_error(exc: AIProxyError) -> Response:
        status = STATUS_BY_KIND.get(exc.kind, 502)
        retry_after = exc.retry_after
        if retry_after is None and status == 503:
            retry_after = 5.0
        if retry_after is None and status == 429:
            retry_after = 10.0
        if status >= 500:
            log.warning(
                "upstream error", extra={"kind": exc.kind, "provider": exc.provider, "status": status}
            )
        return error_response(
            status, exc.message, exc.kind, field=getattr(exc, "field", None), retry_after=retry_after
        )

    @app.errorhandler(ValidationError)
    def _validation_error(exc: ValidationError) -> Response:
        message, field = validation_message(exc)
        return error_response(400, message, "invalid_request", field=field)

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(exc: RequestEntityTooLarge) -> Response:
        limit = app.config.get("MAX_CONTENT_LENGTH")
        return error_response(413, f"request body is larger than the {limit} byte limit", "request_too_large")

    @app.errorhandler(MalformedBody)
    def _malformed_body(exc: MalformedBody) -> Response:
        return error_response(
            400, exc.description or "malformed request body", "malformed_body", field="body"
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        kind = _KIND_BY_HTTP.get(status, "http_error")
        message = {
            404: f"no route {request.path}",
            405: f"method {request.method} not allowed on {request.path}",
        }.get(status, exc.description or exc.name)
        resp = error_response(status, message, kind)
        if status == 405 and exc.get_response().headers.get("Allow"):
            resp.headers["Allow"] = exc.get_response().headers["Allow"]
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.path})
        return error_response(500, "internal error (see the service log for this request id)", "internal")
