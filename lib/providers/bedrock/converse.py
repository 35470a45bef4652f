"""Pure mapping between aiproxy's chat types and the Bedrock Converse API (no I/O here).

Request mapping (``build_converse_request``):

- every ``system`` message, wherever it appears, goes into Converse ``system`` as one text block
  (several are joined with a blank line).  Models without system-prompt support (Titan Text, Mistral
  7B/Mixtral, Cohere Command) get it prepended to the first user turn instead.
- ``user``/``assistant`` turns become Converse messages; empty turns are dropped, consecutive turns of
  the same role are merged (Converse requires alternation), and a conversation that starts with the
  assistant gets a placeholder user turn first (Converse requires the first message to be the user's).
  A request with only system text sends that text as the user turn.
- ``temperature``, ``max_tokens`` (default: a per-model ceiling-safe value, see ``models``) and
  ``stop`` go into ``inferenceConfig``.
- Structured output (``json_schema``): on models that support a forced tool choice (Claude 3+, Nova)
  one tool whose ``inputSchema`` is the schema and ``toolChoice: {"tool": ...}``; the tool input is
  returned as JSON text.  A schema whose top level is not an object is wrapped as
  ``{"value": <schema>}`` (tool inputs must be objects) and unwrapped again.  Other models get an
  instruction (with the schema) appended to the system prompt, and Markdown code fences around the
  answer are removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.errors import InvalidRequestError, InvalidUpstreamResponseError
from lib.providers.base import ChatRequest, Choice, FinishReason, JsonSchema, Message, Usage
from lib.providers.bedrock.models import ChatCapabilities

PLACEHOLDER_USER_TURN = "(conversation start)"
_TOOL_NAME = re.compile(r"[^A-Za-z0-9_-]")
_FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(?P<body>.*?)\n?\s*```\s*$", re.DOTALL)

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "content_filtered": "content_filter",
    "guardrail_intervened": "content_filter",
    "tool_use": "tool_calls",
}


@dataclass(frozen=True, slots=True)
class StructuredOutput:
    """How a ``json_schema`` request was sent, so the answer can be read back the same way."""

    mode: str  # "tool" or "instruction"
    tool_name: str = ""
    wrapped: bool = False  # non-object schema wrapped as {"value": schema}


@dataclass(frozen=True, slots=True)
class ConverseCall:
    kwargs: dict[str, Any]  # keyword arguments for client.converse / client.converse_stream
    structured: StructuredOutput | None


def tool_name_for(schema: JsonSchema) -> str:
    name = _TOOL_NAME.sub("_", schema.name or "")[:64]
    return name or "structured_output"


def schema_instruction(schema: JsonSchema) -> str:
    parts = [
        "Respond with only a JSON value that conforms to the JSON schema below: no text before or after "
        "it and no Markdown code fences."
    ]
    if schema.description:
        parts.append(schema.description)
    parts.append(f"Schema ({schema.name}): {json.dumps(schema.schema, separators=(',', ':'))}")
    return "\n".join(parts)


def _merge_turns(messages: Sequence[Message]) -> tuple[list[str], list[tuple[str, str]]]:
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for msg in messages:
        if msg.role == "system":
            if msg.text.strip():
                system.append(msg.text)
            continue
        if msg.role not in ("user", "assistant"):
            raise InvalidRequestError(f"unsupported message role {msg.role!r}", field="messages")
        if not msg.text.strip():
            continue  # Converse rejects blank text blocks
        if turns and turns[-1][0] == msg.role:
            turns[-1] = (msg.role, turns[-1][1] + "\n\n" + msg.text)
        else:
            turns.append((msg.role, msg.text))
    return system, turns


def build_converse_request(request: ChatRequest, caps: ChatCapabilities) -> ConverseCall:
    system, turns = _merge_turns(request.messages)
    if not turns:
        if not system:
            raise InvalidRequestError("messages must contain some text", field="messages")
        turns = [("user", "\n\n".join(system))]
        system = []
    if turns[0][0] != "user":
        turns.insert(0, ("user", PLACEHOLDER_USER_TURN))

    structured: StructuredOutput | None = None
    kwargs: dict[str, Any] = {"modelId": request.model}
    schema = request.json_schema
    if schema is not None:
        if caps.forced_tool:
            wrapped = schema.schema.get("type") != "object"
            input_schema: dict[str, Any] = (
                {"type": "object", "properties": {"value": schema.schema}, "required": ["value"]}
                if wrapped
                else schema.schema
            )
            name = tool_name_for(schema)
            kwargs["toolConfig"] = {
                "tools": [
                    {
                        "toolSpec": {
                            "name": name,
                            "description": schema.description
                            or "Give the answer as structured data that matches this schema.",
                            "inputSchema": {"json": input_schema},
                        }
                    }
                ],
                "toolChoice": {"tool": {"name": name}},
            }
            structured = StructuredOutput("tool", tool_name=name, wrapped=wrapped)
        else:
            system.append(schema_instruction(schema))
            structured = StructuredOutput("instruction")

    system_text = "\n\n".join(system)
    if system_text and not caps.system_prompt:
        first_role, first_text = turns[0]
        turns[0] = (first_role, system_text + "\n\n" + first_text)
        system_text = ""
    if system_text:
        kwargs["system"] = [{"text": system_text}]
    kwargs["messages"] = [{"role": role, "content": [{"text": text}]} for role, text in turns]

    inference: dict[str, Any] = {
        "maxTokens": request.max_tokens if request.max_tokens is not None else caps.default_max_tokens
    }
    if request.temperature is not None:
        inference["temperature"] = float(request.temperature)
    stops = [s for s in request.stop or () if s]
    if stops:
        inference["stopSequences"] = stops
    kwargs["inferenceConfig"] = inference
    return ConverseCall(kwargs=kwargs, structured=structured)


def finish_reason(stop_reason: str | None, structured: StructuredOutput | None) -> FinishReason | None:
    if stop_reason is None:
        return None
    reason = _STOP_REASONS.get(stop_reason, "stop")
    if reason == "tool_calls" and structured is not None and structured.mode == "tool":
        return "stop"  # our own structured-output tool: the answer is complete
    return reason


def strip_code_fence(text: str) -> str:
    match = _FENCE.match(text)
    return match.group("body").strip() if match else text


def tool_input_text(tool_input: Any, structured: StructuredOutput) -> str:
    value = tool_input
    if structured.wrapped and isinstance(tool_input, Mapping) and "value" in tool_input:
        value = tool_input["value"]
    return json.dumps(value, ensure_ascii=False)


def usage_from(raw: Any) -> Usage:
    """``usage`` of a Converse response or stream ``metadata`` event (missing -> zero)."""
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(int(raw.get("inputTokens") or 0), int(raw.get("outputTokens") or 0))


def parse_converse_response(
    response: Mapping[str, Any], structured: StructuredOutput | None, index: int, model: str
) -> tuple[Choice, Usage]:
    try:
        content = response["output"]["message"]["content"]
        if not isinstance(content, list):
            raise TypeError("content is not a list")
        stop_reason = response.get("stopReason")
        texts: list[str] = []
        tool_text: str | None = None
        for block in content:
            if not isinstance(block, Mapping):
                continue
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block and structured is not None and structured.mode == "tool":
                use = block["toolUse"]
                if use.get("name") == structured.tool_name and tool_text is None:
                    tool_text = tool_input_text(use.get("input"), structured)
    except (KeyError, TypeError, AttributeError) as exc:
        raise InvalidUpstreamResponseError(
            f"Bedrock Converse answer for model {model} has no output message",
            provider="bedrock",
            model=model,
        ) from exc
    if tool_text is not None:
        text = tool_text
    else:
        text = "".join(texts)
        if structured is not None:
            text = strip_code_fence(text)
    reason = finish_reason(str(stop_reason) if stop_reason is not None else None, structured)
    return Choice(index=index, text=text, finish_reason=reason), usage_from(response.get("usage"))
