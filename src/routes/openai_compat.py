"""OpenAI-compatible routes under ``/v1``: the official ``openai`` SDK works against them unchanged
(``OpenAI(base_url="http://host:port/v1", api_key=<aiproxy key>)``)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Response, g, jsonify

from lib.errors import AIProxyError, InvalidRequestError
from lib.providers import token_arrays
from lib.providers.base import ChatDelta, JsonSchema, Usage
from src import dialect
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.errors import error_response, openai_error_body
from src.routes.collections import ground
from src.schemas import (
    ChatCompletionBody,
    ChatCompletionOut,
    OAIEmbeddingsBody,
    OAIEmbeddingsOut,
    OAIModel,
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


def _b64(vector: list[float]) -> str:
    import numpy as np  # only for base64 embeddings: a worker that never sends one never loads it

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
    declared = dialect.tools(body)
    common: dict[str, Any] = {
        "temperature": body.temperature,
        "max_tokens": max_tokens,
        "n": body.n,
        "json_schema": _json_schema(body),
        "stop": stop,
        "tools": declared,
        "tool_choice": dialect.tool_choice(body, declared),
        "parallel_tool_calls": body.parallel_tool_calls,
        "sampling": dialect.sampling(body),
        "deadline": g.deadline,
    }
    msgs, cited = ground(body.retrieval, dialect.messages(body))
    if body.stream:
        route, deltas = svc.gateway.chat_stream(model, msgs, **common)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Response(
            _stream(route.model_id, deltas, include_usage, g.late_log_fields, body.n, citations=cited),
            mimetype="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    result = svc.gateway.chat(model, msgs, **common)
    return jsonify(
        {
            "id": f"chatcmpl-{secrets.token_hex(16)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result.model,
            "choices": [dialect.choice_json(c) for c in result.choices],
            "usage": result.usage.as_dict(),
            **({"citations": cited} if cited is not None else {}),
        }
    )


def _stream(
    route_model: str,
    deltas: Iterator[ChatDelta],
    include_usage: bool,
    log_fields: dict[str, object],
    n: int = 1,
    *,
    citations: list[dict[str, Any]] | None = None,
) -> Iterator[str]:
    """OpenAI's chunk sequence: per choice a role chunk, content / tool-call / logprob chunks, one
    finish chunk; then the usage chunk (when asked) and ``[DONE]``. Errors after the headers are sent
    in-band with the same error object as a non-streamed answer.  Grounded chat (``citations``) first
    sends one chunk with no choices and the ``citations``, as the usage chunk has no choices."""
    cid = f"chatcmpl-{secrets.token_hex(16)}"
    created = int(time.time())
    model = route_model
    if citations is not None:
        head = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
        yield _sse({**head, "choices": [], "citations": citations})

    def chunk(index: int, delta: dict[str, Any], finish: str | None, logprobs: Any = None) -> str:
        return _sse(
            {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}],
            }
        )

    usage = Usage()
    started: set[int] = set()
    finished: set[int] = set()
    try:
        for d in deltas:
            if not started:  # the first delta names the answering model, as non-streamed answers do
                model = d.model or model
            if d.index not in started:
                started.add(d.index)
                yield chunk(d.index, {"role": "assistant", "content": ""}, None)
            if d.usage is not None:
                usage = d.usage
            if d.text or d.logprobs:
                yield chunk(
                    d.index,
                    {"content": d.text},
                    None,
                    dialect.logprobs_json(d.logprobs) if d.logprobs else None,
                )
            if d.tool_calls:
                calls = [dialect.tool_call_delta_json(tc) for tc in d.tool_calls]
                yield chunk(d.index, {"tool_calls": calls}, None)
            if d.finish_reason and d.index not in finished:
                finished.add(d.index)
                yield chunk(d.index, {}, d.finish_reason)
    except AIProxyError as exc:
        # Headers are gone already: report the failure in-band, the way OpenAI does.
        log_fields["error_kind"] = exc.kind
        yield _sse(openai_error_body(exc.message, exc.kind, getattr(exc, "field", None)))
        return
    for index in range(n):
        if index not in started:
            yield chunk(index, {"role": "assistant", "content": ""}, None)
        if index not in finished:
            yield chunk(index, {}, "stop")
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


@bp.get("/models/<path:model_id>")
@require_auth
@documented(
    "One model this service routes (as listed by /v1/models, or any routable name); no upstream call",
    responses={200: OAIModel},
    errors=(401, 404),
    tags=("openai-compatible",),
)
def model_info(model_id: str) -> Response:
    gateway = services().gateway
    for m in gateway.catalog():
        if m.id == model_id:
            return jsonify({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by})
    try:
        route = gateway.resolve(model_id)
    except AIProxyError:
        return error_response(404, f"model {model_id!r} is not routed by this service", "model_not_found")
    return jsonify({"id": model_id, "object": "model", "created": 0, "owned_by": route.provider})


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
    arrays = body.token_arrays()
    texts = token_arrays.decode(arrays) if arrays is not None else body.texts()
    result = svc.gateway.embed(
        model, texts, dimensions=body.dimensions, deadline=g.deadline, token_ids=arrays
    )
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
