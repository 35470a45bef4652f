"""OpenAI-compatible routes under ``/v1``: the official ``openai`` SDK works against them unchanged
(``OpenAI(base_url="http://host:port/v1", api_key=<aiproxy key>)``)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
from flask import Blueprint, Response, g, jsonify

from lib.errors import AIProxyError, InvalidRequestError
from lib.providers.base import ChatDelta, JsonSchema, Message, Usage
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.errors import STATUS_BY_KIND
from src.schemas import (
    ChatCompletionBody,
    ChatCompletionOut,
    OAIEmbeddingsBody,
    OAIEmbeddingsOut,
    OAIModelList,
)

bp = Blueprint("openai_compat", __name__, url_prefix="/v1")


def _json_schema(body: ChatCompletionBody) -> JsonSchema | None:
    fmt = body.response_format
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return JsonSchema("json_object", {"type": "object"})
    if fmt.json_schema is None or not fmt.json_schema.schema_:
        raise InvalidRequestError(
            "response_format.json_schema.schema is required for type json_schema",
            field="response_format.json_schema",
        )
    return JsonSchema(fmt.json_schema.name, fmt.json_schema.schema_, fmt.json_schema.description or "")


def _messages(body: ChatCompletionBody) -> list[Message]:
    return [Message("system" if m.role == "developer" else m.role, m.text()) for m in body.messages]


def _b64(vector: list[float]) -> str:
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode("ascii")


def _sse(payload: dict[str, Any] | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"


@bp.post("/chat/completions")
@require_auth
@documented(
    "OpenAI-compatible chat completion (stream: true answers server-sent events)",
    body=ChatCompletionBody,
    responses={200: ChatCompletionOut},
    errors=UPSTREAM_ERRORS,
    tags=("openai-compatible",),
    stream=True,
)
def chat_completions() -> Response:
    body = parse_body(ChatCompletionBody)
    svc = services()
    model = body.model or svc.gateway.default_model("chat")
    g.model = model
    stop = [body.stop] if isinstance(body.stop, str) else body.stop
    max_tokens = body.max_completion_tokens or body.max_tokens
    schema = _json_schema(body)
    if body.stream:
        if body.n != 1:
            raise InvalidRequestError("n > 1 is not supported with stream: true", field="n")
        route, deltas = svc.gateway.chat_stream(
            model,
            _messages(body),
            temperature=body.temperature,
            max_tokens=max_tokens,
            json_schema=schema,
            stop=stop,
            deadline=g.deadline,
        )
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Response(
            _stream(route.model_id, deltas, include_usage, g.late_log_fields),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = svc.gateway.chat(
        model,
        _messages(body),
        temperature=body.temperature,
        max_tokens=max_tokens,
        n=body.n,
        json_schema=schema,
        stop=stop,
        deadline=g.deadline,
    )
    return jsonify(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result.model,
            "choices": [
                {
                    "index": c.index,
                    "message": {"role": "assistant", "content": c.text},
                    "finish_reason": c.finish_reason or "stop",
                    "logprobs": None,
                }
                for c in result.choices
            ],
            "usage": result.usage.as_dict(),
        }
    )


def _stream(
    route_model: str, deltas: Iterator[ChatDelta], include_usage: bool, log_fields: dict[str, object]
) -> Iterator[str]:
    cid = f"chatcmpl-{uuid.uuid4().hex}"
    created = int(time.time())
    model = route_model

    def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    usage = Usage()
    finished = False
    started = False
    try:
        for d in deltas:
            if not started:  # the first delta names the answering model, as non-streamed answers do
                model = d.model or model
                started = True
                yield _sse(chunk({"role": "assistant", "content": ""}, None))
            if d.usage is not None:
                usage = d.usage
            if d.text:
                yield _sse(chunk({"content": d.text}, None))
            if d.finish_reason and not finished:
                finished = True
                yield _sse(chunk({}, d.finish_reason))
    except AIProxyError as exc:
        # Headers are gone already: report the failure in-band, the way OpenAI does.
        log_fields["error_kind"] = exc.kind
        status = STATUS_BY_KIND.get(exc.kind, 502)
        yield _sse({"error": {"message": exc.message, "type": exc.kind, "code": str(status), "param": None}})
        return
    if not started:
        yield _sse(chunk({"role": "assistant", "content": ""}, None))
    if not finished:
        yield _sse(chunk({}, "stop"))
    if include_usage:
        yield _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage.as_dict(),
            }
        )
    yield _sse("[DONE]")


@bp.post("/embeddings")
@require_auth
@documented(
    "OpenAI-compatible embeddings",
    body=OAIEmbeddingsBody,
    responses={200: OAIEmbeddingsOut},
    errors=UPSTREAM_ERRORS,
    tags=("openai-compatible",),
)
def embeddings() -> Response:
    body = parse_body(OAIEmbeddingsBody)
    svc = services()
    model = body.model or svc.gateway.default_model("embedding")
    g.model = model
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = svc.gateway.embed(model, texts, dimensions=body.dimensions, deadline=g.deadline)
    as_base64 = body.encoding_format == "base64"
    return jsonify(
        {
            "object": "list",
            "model": result.model,
            "data": [
                {"object": "embedding", "index": i, "embedding": _b64(v) if as_base64 else v}
                for i, v in enumerate(result.vectors)
            ],
            "usage": {"prompt_tokens": result.usage.prompt_tokens, "total_tokens": result.usage.total_tokens},
        }
    )


@bp.get("/models")
@require_auth
@documented(
    "Models this service routes (defaults, aliases, local models); no upstream call",
    responses={200: OAIModelList},
    errors=(401,),
    tags=("openai-compatible",),
)
def models() -> Response:
    catalog = services().gateway.catalog()
    return jsonify(
        {
            "object": "list",
            "data": [{"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by} for m in catalog],
        }
    )
