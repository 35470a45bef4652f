"""OpenAI's chat dialect <-> the provider interface's typed values, for ``/v1`` (and ``/chat``).

Inbound: messages with text / ``image_url`` parts, assistant ``tool_calls``, ``role: "tool"`` results,
``tools``, ``tool_choice`` and the sampling fields become ``lib.providers.base`` values. Outbound:
choices, tool calls, streamed tool-call deltas and logprobs become OpenAI's JSON.

Images: only ``data:`` URLs (``data:image/<png|jpeg|gif|webp>;base64,...``) whose bytes start with that
format's magic number; at most ``MAX_IMAGE_BYTES`` decoded bytes each and ``MAX_IMAGES`` per request.
``http(s)`` URLs are refused (400): the service fetches nothing on a caller's behalf.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any

from lib.errors import InvalidRequestError
from lib.providers.base import (
    Choice,
    ContentPart,
    ImagePart,
    Message,
    Sampling,
    TextPart,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResult,
)
from src.schemas import ChatCompletionBody, ImageURL, OAIMessage

#: Decoded bytes of one image (Bedrock Converse's limit for Claude, the strictest provider).
MAX_IMAGE_BYTES = 3_750_000
#: Images in one request (Converse's limit).
MAX_IMAGES = 20

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "image/webp": (b"RIFF",),
}


def image_part(image: ImageURL, where: str) -> ImagePart:
    url = image.url.strip()
    lowered = url[:16].lower()
    if lowered.startswith(("http://", "https://")):
        raise InvalidRequestError(
            f"{where}: image URLs are not fetched; send the image inline as a data: URL "
            "(data:image/png;base64,...)",
            field=where,
        )
    if not lowered.startswith("data:"):
        raise InvalidRequestError(f"{where}: must be a data: URL (data:image/png;base64,...)", field=where)
    header, sep, payload = url[5:].partition(",")
    media, _, encoding = header.partition(";")
    media = media.lower()
    if not sep or encoding.lower() != "base64" or media not in _MAGIC:
        raise InvalidRequestError(
            f"{where}: must be data:image/(png|jpeg|gif|webp);base64,<data>", field=where
        )
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 8:
        raise InvalidRequestError(f"{where}: image is larger than {MAX_IMAGE_BYTES} bytes", field=where)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(f"{where}: image data is not valid base64", field=where) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidRequestError(f"{where}: image is larger than {MAX_IMAGE_BYTES} bytes", field=where)
    ok = any(data.startswith(m) for m in _MAGIC[media])
    if media == "image/webp":
        ok = ok and data[8:12] == b"WEBP"
    if not ok:
        raise InvalidRequestError(f"{where}: image bytes are not {media}", field=where)
    return ImagePart(media, data, image.detail)  # type: ignore[arg-type]


def _message(m: OAIMessage, i: int) -> Message:
    where = f"messages.{i}"
    if m.role == "tool":
        if not m.tool_call_id:
            raise InvalidRequestError(f"{where}.tool_call_id is required for role tool", field=where)
        return Message("tool", (ToolResult(m.tool_call_id, m.text()),))
    role = "system" if m.role == "developer" else m.role
    parts: list[ContentPart] = []
    if isinstance(m.content, str):
        if m.content:
            parts.append(TextPart(m.content))
    else:
        for j, p in enumerate(m.content or ()):
            if p.type == "text":
                parts.append(TextPart(p.text or ""))
            elif p.image_url is None:
                raise InvalidRequestError(f"{where}.content.{j}.image_url is required", field=where)
            elif role != "user":
                raise InvalidRequestError(f"{where}: only user messages may hold images", field=where)
            else:
                parts.append(image_part(p.image_url, f"{where}.content.{j}.image_url"))
    if m.tool_calls:
        if role != "assistant":
            raise InvalidRequestError(
                f"{where}.tool_calls: only assistant messages make tool calls", field=where
            )
        parts += [ToolCall(tc.id, tc.function.name, tc.function.arguments) for tc in m.tool_calls]
    if all(isinstance(p, TextPart) for p in parts):
        return Message(role, "".join(p.text for p in parts if isinstance(p, TextPart)))
    return Message(role, tuple(parts))


def messages(body: ChatCompletionBody) -> list[Message]:
    out = [_message(m, i) for i, m in enumerate(body.messages)]
    images = sum(len(m.images) for m in out)
    if images > MAX_IMAGES:
        raise InvalidRequestError(f"at most {MAX_IMAGES} images per request, got {images}", field="messages")
    return out


def tools(body: ChatCompletionBody) -> tuple[Tool, ...]:
    out = tuple(
        Tool(t.function.name, t.function.parameters, t.function.description or "", t.function.strict)
        for t in body.tools or ()
    )
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise InvalidRequestError("tools: function names must be unique", field="tools")
    return out


def tool_choice(body: ChatCompletionBody, declared: Sequence[Tool]) -> ToolChoice | None:
    choice = body.tool_choice
    if choice is None:
        return None
    if isinstance(choice, str):
        if choice == "required" and not declared:
            raise InvalidRequestError("tool_choice required needs tools", field="tool_choice")
        return ToolChoice(choice)
    name = choice.function.name
    if name not in {t.name for t in declared}:
        raise InvalidRequestError(f"tool_choice names {name!r}, which is not in tools", field="tool_choice")
    return ToolChoice("function", name)


def sampling(body: ChatCompletionBody) -> Sampling:
    bias = body.logit_bias
    if bias is not None:
        for key, value in bias.items():
            if not key.isdigit() or not -100 <= value <= 100:
                raise InvalidRequestError(
                    "logit_bias maps token ids (digits) to biases between -100 and 100", field="logit_bias"
                )
    if body.top_logprobs is not None and not body.logprobs:
        raise InvalidRequestError("top_logprobs needs logprobs: true", field="top_logprobs")
    return Sampling(
        top_p=body.top_p,
        seed=body.seed,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        logit_bias=dict(bias) if bias is not None else None,
        user=body.user,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs,
    )


# --- outbound ----------------------------------------------------------------------------------


def tool_call_json(tc: ToolCall) -> dict[str, Any]:
    return {"id": tc.id, "type": "function", "function": {"name": tc.name, "arguments": tc.arguments}}


def logprobs_json(items: Sequence[TokenLogprob]) -> dict[str, Any]:
    return {
        "content": [
            {
                "token": t.token,
                "logprob": t.logprob,
                "bytes": list(t.bytes) if t.bytes is not None else None,
                "top_logprobs": [
                    {"token": x.token, "logprob": x.logprob, "bytes": list(x.bytes) if x.bytes else None}
                    for x in t.top
                ],
            }
            for t in items
        ],
        "refusal": None,
    }


def choice_json(c: Choice) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": c.text if c.text or not c.tool_calls else None}
    if c.tool_calls:
        message["tool_calls"] = [tool_call_json(tc) for tc in c.tool_calls]
    return {
        "index": c.index,
        "message": message,
        "finish_reason": c.finish_reason or "stop",
        "logprobs": logprobs_json(c.logprobs) if c.logprobs is not None else None,
    }


def tool_call_delta_json(d: ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": d.index}
    fn: dict[str, Any] = {"arguments": d.arguments}
    if d.id is not None:
        out["id"] = d.id
        out["type"] = "function"
    if d.name is not None:
        fn["name"] = d.name
    out["function"] = fn
    return out
