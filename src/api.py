"""Small route toolkit shared by every blueprint.

- ``services()``: the app's ``Services`` (settings, gateway, metrics), created by the app factory.
- ``@documented(...)``: attaches OpenAPI metadata (body model, response models, statuses, auth) to a
  view; ``src/openapi.py`` turns it into ``/openapi.json``. The same pydantic models validate bodies.
- ``parse_body(Model)``: JSON, ``application/x-www-form-urlencoded`` or ``multipart/form-data`` into a
  validated model. Form fields arrive as strings; list/object fields may be sent as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel

from lib.errors import InvalidRequestError
from lib.observability import Metrics
from lib.providers.gateway import Gateway
from lib.settings import Settings
from src.limits import find_lone_surrogate, lone_surrogate_message

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])

#: Error statuses documented on every authenticated model-calling route.
UPSTREAM_ERRORS = (400, 401, 413, 429, 502, 503, 504)


@dataclass
class Services:
    settings: Settings
    gateway: Gateway
    metrics: Metrics


def services() -> Services:
    svc: Services = current_app.extensions["aiproxy"]
    return svc


@dataclass
class ApiDoc:
    summary: str
    body: type[BaseModel] | None = None
    responses: dict[int, type[BaseModel] | str] = field(default_factory=dict)
    errors: tuple[int, ...] = ()
    form: bool = False  # body also accepted as form fields
    tags: tuple[str, ...] = ()
    description: str = ""
    stream: bool = False  # 200 may also be text/event-stream
    query: type[BaseModel] | None = None  # optional query (or form) parameters, documented one by one


def documented(
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    responses: dict[int, type[BaseModel] | str] | None = None,
    errors: tuple[int, ...] = (),
    form: bool = False,
    tags: tuple[str, ...] = (),
    description: str = "",
    stream: bool = False,
    query: type[BaseModel] | None = None,
) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        view._aiproxy_doc = ApiDoc(  # type: ignore[attr-defined]
            summary, body, dict(responses or {}), errors, form, tags, description, stream, query
        )
        return view

    return decorate


def _form_dict(model: type[BaseModel]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in request.form:
        values = request.form.getlist(name)
        data[name] = values[-1]
    for name, info in model.model_fields.items():
        key = info.alias or name
        raw = data.get(key)
        if isinstance(raw, str) and _wants_structured(info.annotation):
            text = raw.strip()
            if text.startswith(("[", "{")):
                try:
                    data[key] = json.loads(text)
                except (ValueError, RecursionError):  # RecursionError: nested deeper than Python's limit
                    raise InvalidRequestError(f"{key}: not valid JSON", field=key) from None
    return data


def _wants_structured(annotation: Any) -> bool:
    text = str(annotation)
    return any(token in text for token in ("list", "dict", "List", "Dict", "BaseModel")) or (
        isinstance(annotation, type) and issubclass(annotation, BaseModel)
    )


def _validate(model: type[M], data: dict[str, Any]) -> M:
    """Every text of the body must be valid Unicode (checked for every route, whatever the model)."""
    bad = find_lone_surrogate(data)
    if bad is not None:
        raise InvalidRequestError(lone_surrogate_message(*bad), field=bad[0])
    return model.model_validate(data)


def no_body() -> None:
    """For routes that take no body: read it anyway, before acting.

    Reading counts the bytes against ``MAX_BODY_BYTES`` and checks the chunked framing
    (``src/body_limit.py``), so an oversized or malformed body is a 413/400 here instead of the
    route acting on it (a revoked key, a deleted collection) and the server then dropping the
    connection with the body unread (the client sees a reset, not the answer).  Nothing or an empty
    JSON object is accepted; anything else is a 400 rather than silently ignored.
    """
    raw = request.get_data(cache=True).strip()
    if not raw:
        return
    try:
        empty = json.loads(raw) == {}
    except (ValueError, RecursionError):
        empty = False
    if not empty:
        raise InvalidRequestError("this route takes no request body (send none, or {})", field="body")


def parse_body(model: type[M], *, allow_form: bool = False) -> M:
    """Validate the request body as ``model``; bad input raises 400 naming the field."""
    mimetype = request.mimetype or ""
    if allow_form and mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return _validate(model, _form_dict(model))
    if mimetype == "application/json" or mimetype.endswith("+json") or not mimetype:
        raw = request.get_data(cache=True)
        if not raw.strip():
            raise InvalidRequestError("request body is empty: send a JSON object", field="body")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise InvalidRequestError("request body is not valid JSON", field="body") from None
        except RecursionError:  # e.g. 100,000 nested "[": valid JSON that Python cannot parse
            raise InvalidRequestError("request body is nested too deeply", field="body") from None
        if not isinstance(data, dict):
            raise InvalidRequestError("request body must be a JSON object", field="body")
        return _validate(model, data)
    accepted = "application/json" + (
        ", application/x-www-form-urlencoded, multipart/form-data" if allow_form else ""
    )
    raise InvalidRequestError(f"unsupported Content-Type {mimetype!r}: send {accepted}", field="body")
