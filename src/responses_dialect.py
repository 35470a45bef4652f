"""OpenAI's Responses API <-> the provider interface, for ``POST /v1/responses``.

The Responses API is a second dialect over the very same provider calls as ``/v1/chat/completions``
(OpenAI's upstream ``/responses`` endpoint is never called): ``instructions`` and ``input`` items
become ``Message`` values (``function_call`` items join the assistant turn before them,
``function_call_output`` items become tool turns), flat function tools become ``Tool`` values,
``text.format`` a ``JsonSchema``; a ``ChatResult`` becomes the ``response`` object. The service is
stateless: nothing is stored, so the object always says ``store: false``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lib.errors import InvalidRequestError
from lib.providers.base import (
    Choice,
    ContentPart,
    FinishReason,
    JsonSchema,
    Message,
    Sampling,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
    Usage,
)
from lib.providers.deadline import Deadline
from src.dialect import MAX_IMAGES, image_part
from src.responses_schemas import (
    FunctionCallItem,
    FunctionCallOutputItem,
    InputImage,
    InputText,
    MessageItem,
    NamedFunction,
    ResponsesBody,
    TextFormatJsonObject,
    TextFormatJsonSchema,
)
from src.schemas import ImageURL

#: Fields of the chat call named as the Responses body names them (capability refusals, limits).
RESPONSES_FIELD = {"messages": "input", "max_tokens": "max_output_tokens", "response_format": "text.format"}

#: ``finish_reason`` of a cut-off answer -> ``incomplete_details.reason``.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True, slots=True)
class ChatCall:
    """The gateway call a Responses body stands for: ``gateway.chat(model, messages, **options)``."""

    messages: list[Message]
    options: dict[str, Any]


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


# --- inbound ------------------------------------------------------------------------------------


def _image(part: InputImage, where: str) -> ContentPart:
    if not part.image_url:
        raise InvalidRequestError(f"{where}.image_url is required (a data: URL)", field=f"{where}.image_url")
    return image_part(ImageURL(url=part.image_url, detail=part.detail), f"{where}.image_url")


def _message(item: MessageItem, where: str) -> Message:
    role = "system" if item.role == "developer" else item.role
    parts: list[ContentPart] = []
    for j, p in enumerate(item.content):
        if isinstance(p, InputImage):
            if role != "user":
                raise InvalidRequestError(
                    f"{where}.content.{j}: only user messages may hold images", field=f"{where}.content.{j}"
                )
            parts.append(_image(p, f"{where}.content.{j}"))
        else:
            parts.append(TextPart(p.refusal if p.type == "refusal" else p.text))
    if all(isinstance(p, TextPart) for p in parts):
        return Message(role, "".join(p.text for p in parts if isinstance(p, TextPart)))
    return Message(role, tuple(parts))


def _tool_output(item: FunctionCallOutputItem, where: str) -> str:
    for j, p in enumerate(item.output):
        if not isinstance(p, InputText):
            raise InvalidRequestError(
                f"{where}.output.{j}: a function_call_output holds text only", field=f"{where}.output.{j}"
            )
    return "".join(p.text for p in item.output if isinstance(p, InputText))


def messages(body: ResponsesBody) -> list[Message]:
    """``instructions`` (a system turn) then the ``input`` items as turns."""
    out: list[Message] = [Message("system", body.instructions)] if body.instructions else []
    called: set[str] = set()
    for i, item in enumerate(body.input):
        where = f"input.{i}"
        if isinstance(item, MessageItem):
            out.append(_message(item, where))
        elif isinstance(item, FunctionCallItem):
            call = ToolCall(item.call_id, item.name, item.arguments)
            called.add(item.call_id)
            if out and out[-1].role == "assistant":  # the calls belong to the assistant turn before them
                out[-1] = Message("assistant", (*out[-1].parts, call))
            else:
                out.append(Message("assistant", (call,)))
        else:
            if item.call_id not in called:
                raise InvalidRequestError(
                    f"{where}.call_id {item.call_id!r} answers no earlier function_call item",
                    field=f"{where}.call_id",
                )
            out.append(Message("tool", (ToolResult(item.call_id, _tool_output(item, where)),)))
    images = sum(len(m.images) for m in out)
    if images > MAX_IMAGES:
        raise InvalidRequestError(f"at most {MAX_IMAGES} images per request, got {images}", field="input")
    return out


def tools(body: ResponsesBody) -> tuple[Tool, ...]:
    declared = tuple(
        Tool(t.name, t.parameters or {"type": "object", "properties": {}}, t.description or "", t.strict)
        for t in body.tools or ()
    )
    if len({t.name for t in declared}) != len(declared):
        raise InvalidRequestError("tools: function names must be unique", field="tools")
    return declared


def tool_choice(body: ResponsesBody, declared: Sequence[Tool]) -> ToolChoice | None:
    """``auto``/``none``/``required``, or Responses' flat ``{"type": "function", "name"}``; a choice
    that cannot be met by the declared tools is a 400 before any upstream call."""
    choice = body.tool_choice
    if choice == "required" and not declared:
        raise InvalidRequestError("tool_choice required needs tools", field="tool_choice")
    if isinstance(choice, NamedFunction):
        if choice.name not in {t.name for t in declared}:
            raise InvalidRequestError(
                f"tool_choice names {choice.name!r}, not one of tools", field="tool_choice"
            )
        return ToolChoice("function", choice.name)
    return ToolChoice(choice) if choice is not None else None


def json_schema(body: ResponsesBody) -> JsonSchema | None:
    fmt = body.text.format if body.text is not None else None
    if isinstance(fmt, TextFormatJsonSchema):
        return JsonSchema(fmt.name, fmt.schema_, fmt.description or "")
    if isinstance(fmt, TextFormatJsonObject):
        return JsonSchema("json_object", {"type": "object"})
    return None


def chat_call(body: ResponsesBody, deadline: Deadline) -> ChatCall:
    declared = tools(body)
    return ChatCall(
        messages(body),
        {
            "temperature": body.temperature,
            "max_tokens": body.max_output_tokens,
            "json_schema": json_schema(body),
            "tools": declared,
            "tool_choice": tool_choice(body, declared),
            "parallel_tool_calls": body.parallel_tool_calls,
            "sampling": Sampling(top_p=body.top_p, user=body.user),
            "deadline": deadline,
        },
    )


# --- outbound -----------------------------------------------------------------------------------


def envelope(body: ResponsesBody, model: str) -> dict[str, Any]:
    """The ``response`` object before any output: what ``response.created`` carries, and what the
    finished object repeats (the request's settings echoed, as OpenAI does)."""
    fmt = body.text.format if body.text is not None else None
    choice = body.tool_choice
    return {
        "id": new_id("resp"),
        "object": "response",
        "created_at": int(time.time()),
        "status": "in_progress",
        "error": None,
        "incomplete_details": None,
        "instructions": body.instructions,
        "max_output_tokens": body.max_output_tokens,
        "model": model,
        "output": [],
        "parallel_tool_calls": body.parallel_tool_calls is not False,
        "previous_response_id": None,
        "store": False,
        "temperature": body.temperature,
        "top_p": body.top_p,
        "text": {"format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}},
        "tool_choice": choice.model_dump()
        if choice is not None and not isinstance(choice, str)
        else choice or "auto",
        "tools": [t.model_dump() for t in body.tools or ()],
        "truncation": "disabled",
        "usage": None,
        "user": body.user,
        "metadata": body.metadata or {},
    }


def item_status(finish_reason: FinishReason | None) -> str:
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [output_text(text)],
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call: ToolCall, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call.id,
        "name": call.name,
        "arguments": call.arguments,
    }


def output_items(choice: Choice) -> list[dict[str, Any]]:
    """A message item with the answer's text (unless the answer is only tool calls), then one
    ``function_call`` item per call."""
    status = item_status(choice.finish_reason)
    items = [message_item(new_id("msg"), choice.text, status)] if choice.text or not choice.tool_calls else []
    return items + [function_call_item(new_id("fc"), tc, status) for tc in choice.tool_calls]


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def finished(
    response: dict[str, Any], output: list[dict[str, Any]], finish_reason: FinishReason | None, usage: Usage
) -> dict[str, Any]:
    """``response`` completed (or ``incomplete`` when the token limit or a content filter cut it)."""
    reason = _INCOMPLETE.get(finish_reason or "")
    return {
        **response,
        "status": "incomplete" if reason else "completed",
        "incomplete_details": {"reason": reason} if reason else None,
        "output": output,
        "usage": usage_json(usage),
    }
