"""``POST /v1/responses``: OpenAI's Responses API on every provider.

The body is translated to the same gateway chat call as ``/v1/chat/completions``
(``src/responses_dialect.py``), so routing, the capability check, deadline, retries and fallbacks
are the chat route's; the answer is translated back to a ``response`` object or, with
``stream: true``, to the Responses event stream (``src/responses_stream.py``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Blueprint, Response, g, jsonify
from pydantic import ValidationError

from lib.errors import InvalidRequestError
from src import responses_dialect as rd
from src import responses_stream
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.responses_schemas import ResponseOut, ResponsesBody, body_errors

bp = Blueprint("responses", __name__, url_prefix="/v1")


@contextmanager
def _responses_fields() -> Iterator[None]:
    """A refusal decided on the chat call (capabilities) names the field as the Responses body does."""
    try:
        yield
    except InvalidRequestError as exc:
        exc.field = rd.RESPONSES_FIELD.get(exc.field or "", exc.field)
        raise


@bp.post("/responses")
@require_auth
@documented(
    "OpenAI Responses API, translated to the routed provider's chat call (stream: true answers "
    "Responses server-sent events)",
    body=ResponsesBody,
    responses={200: ResponseOut},
    errors=UPSTREAM_ERRORS,
    tags=("openai-compatible",),
    stream=True,
    description="Stateless: nothing is stored, `previous_response_id` is refused; see API.md.",
)
def create_response() -> Response:
    try:
        body = parse_body(ResponsesBody)
    except ValidationError as exc:
        raise body_errors(exc) from None
    svc = services()
    model = body.model or svc.gateway.default_model("chat")
    g.model = model
    call = rd.chat_call(body, g.deadline)
    if body.stream:
        with _responses_fields():
            route, deltas = svc.gateway.chat_stream(model, call.messages, **call.options)
        first = next(deltas, None)  # already fetched by the gateway: names the answering model
        if first is not None:
            deltas = itertools.chain([first], deltas)
        response = rd.envelope(body, (first.model if first else None) or route.model_id)
        return Response(
            responses_stream.events(response, deltas, g.late_log_fields),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    with _responses_fields():
        result = svc.gateway.chat(model, call.messages, **call.options)
    choice = result.choices[0]
    output = rd.output_items(choice)
    return jsonify(rd.finished(rd.envelope(body, result.model), output, choice.finish_reason, result.usage))
