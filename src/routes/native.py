"""Native routes: ``POST /chat`` and ``POST /embeddings``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify

from lib.errors import InvalidRequestError
from lib.providers.base import (
    ChatResult,
    JsonSchema,
    Message,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.routes.collections import ground
from src.schemas import ChatBody, ChatOut, EmbeddingsBody, EmbeddingsOut, MessageIn

bp = Blueprint("native", __name__)


def _call_json(t: ToolCall) -> dict[str, str]:
    return {"id": t.id, "name": t.name, "arguments": t.arguments}


def chat_payload(result: ChatResult) -> dict[str, Any]:
    """The ``/chat`` answer (also used by the legacy ``/test/openai``)."""
    return {
        "model": result.model,
        "provider": result.provider,
        "reply": result.choices[0].text,
        "choices": [
            {
                "index": c.index,
                "text": c.text,
                "finish_reason": c.finish_reason,
                **(
                    {
                        "tool_calls": [
                            {"id": t.id, "name": t.name, "arguments": t.arguments} for t in c.tool_calls
                        ]
                    }
                    if c.tool_calls
                    else {}
                ),
            }
            for c in result.choices
        ],
        "usage": result.usage.as_dict(),
        "latency_ms": round(result.latency_s * 1000, 1),
    }


def _message(m: MessageIn, i: int) -> Message:
    """A native message: text, or (assistant) text plus tool calls, or (tool) one tool result."""
    if m.role == "tool":
        if not m.tool_call_id:
            raise InvalidRequestError(
                f"messages.{i}.tool_call_id is required for role tool", field="messages"
            )
        return Message("tool", (ToolResult(m.tool_call_id, m.content),))
    if m.tool_calls:
        if m.role != "assistant":
            raise InvalidRequestError(f"messages.{i}.tool_calls: only assistant turns", field="messages")
        calls = tuple(ToolCall(t.id, t.name, t.arguments) for t in m.tool_calls)
        return Message("assistant", ((TextPart(m.content),) if m.content else ()) + calls)
    return Message(m.role, m.content)


def _tool_choice(choice: str | None, tools: tuple[Tool, ...]) -> ToolChoice | None:
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        return ToolChoice(choice)  # type: ignore[arg-type]
    if choice not in {t.name for t in tools}:
        raise InvalidRequestError(f"tool_choice {choice!r} is not the name of a tool", field="tool_choice")
    return ToolChoice("function", choice)


@bp.post("/chat")
@require_auth
@documented(
    "Chat with any routed model",
    body=ChatBody,
    responses={200: ChatOut},
    errors=UPSTREAM_ERRORS,
    form=True,
    tags=("models",),
    description="Form posts send `messages` (and `json_schema`) as JSON text.",
)
def chat() -> Response:
    body = parse_body(ChatBody, allow_form=True)
    svc = services()
    model = body.model or svc.gateway.default_model("chat")
    g.model = model
    tools = tuple(Tool(t.name, t.parameters, t.description or "", t.strict) for t in body.tools or ())
    messages, cited = ground(body.retrieval, [_message(m, i) for i, m in enumerate(body.messages)])
    result = svc.gateway.chat(
        model,
        messages,
        temperature=body.temperature,
        max_tokens=body.max_tokens,
        n=body.n,
        json_schema=JsonSchema("response", body.json_schema) if body.json_schema else None,
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools),
        deadline=g.deadline,
    )
    return jsonify({**chat_payload(result), **({"citations": cited} if cited is not None else {})})


@bp.post("/embeddings")
@require_auth
@documented(
    "Embed one text or a list of texts",
    body=EmbeddingsBody,
    responses={200: EmbeddingsOut},
    errors=UPSTREAM_ERRORS,
    tags=("models",),
)
def embeddings() -> Response:
    body = parse_body(EmbeddingsBody)
    svc = services()
    model = body.model or svc.gateway.default_model("embedding")
    g.model = model
    texts = [body.input] if isinstance(body.input, str) else body.input
    result = svc.gateway.embed(model, texts, dimensions=body.dimensions, deadline=g.deadline)
    return jsonify(
        {
            "model": result.model,
            "provider": result.provider,
            "data": [{"index": i, "embedding": v} for i, v in enumerate(result.vectors)],
            "dimensions": result.dimensions,
            "usage": result.usage.as_dict(),
        }
    )
