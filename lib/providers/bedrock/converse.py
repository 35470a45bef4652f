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
- ``parallel_tool_calls: false``: Converse has no switch for it (Claude may answer with several
  ``toolUse`` blocks), so the answer keeps only its first tool call (``only_first_tool_call`` for
  streams): the client sees at most one call per turn, as OpenAI promises for ``false``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from lib.errors import InvalidRequestError, InvalidUpstreamResponseError
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    Choice,
    FinishReason,
    ImagePart,
    JsonSchema,
    Message,
    TextPart,
    ToolCall,
    ToolResult,
    Usage,
)
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
    one_tool_call: bool = False  # parallel_tool_calls: false -> keep the answer's first tool call only


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


Block = dict[str, Any]


def _blocks(msg: Message) -> list[Block]:
    """Converse content blocks of one message (blank text dropped: Converse rejects it)."""
    out: list[Block] = []
    for part in msg.parts:
        if isinstance(part, TextPart):
            if part.text.strip():
                out.append({"text": part.text})
        elif isinstance(part, ImagePart):
            out.append({"image": {"format": part.media_type.split("/")[1], "source": {"bytes": part.data}}})
        elif isinstance(part, ToolCall):
            try:
                args = json.loads(part.arguments) if part.arguments.strip() else {}
            except ValueError:
                raise InvalidRequestError(
                    f"tool call {part.id!r}: arguments are not JSON", field="messages"
                ) from None
            if not isinstance(args, dict):
                raise InvalidRequestError(
                    f"tool call {part.id!r}: arguments must be a JSON object", field="messages"
                )
            out.append({"toolUse": {"toolUseId": part.id, "name": part.name, "input": args}})
        elif isinstance(part, ToolResult):
            out.append(
                {
                    "toolResult": {
                        "toolUseId": part.tool_call_id,
                        "content": [{"text": part.content or "(empty)"}],
                    }
                }
            )
    return out


def _merge_turns(messages: Sequence[Message]) -> tuple[list[str], list[tuple[str, list[Block]]]]:
    """System text apart; turns with Converse roles (a tool result is the user's), same roles merged."""
    system: list[str] = []
    turns: list[tuple[str, list[Block]]] = []
    for msg in messages:
        if msg.role == "system":
            if msg.text.strip():
                system.append(msg.text)
            continue
        if msg.role not in ("user", "assistant", "tool"):
            raise InvalidRequestError(f"unsupported message role {msg.role!r}", field="messages")
        role = "user" if msg.role == "tool" else msg.role
        blocks = _blocks(msg)
        if not blocks:
            continue
        if turns and turns[-1][0] == role:
            prev = turns[-1][1]
            if prev and blocks and "text" in prev[-1] and "text" in blocks[0]:
                prev[-1] = {"text": prev[-1]["text"] + "\n\n" + blocks[0]["text"]}
                blocks = blocks[1:]
            prev.extend(blocks)
        else:
            turns.append((role, blocks))
    return system, turns


def _tool_config(request: ChatRequest) -> dict[str, Any] | None:
    """``toolConfig`` for the caller's tools (``tool_choice: none`` sends none)."""
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return None
    config: dict[str, Any] = {
        "tools": [
            {
                "toolSpec": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "inputSchema": {"json": t.parameters},
                }
            }
            for t in request.tools
        ]
    }
    if choice is not None and choice.mode == "required":
        config["toolChoice"] = {"any": {}}
    elif choice is not None and choice.mode == "function":
        config["toolChoice"] = {"tool": {"name": choice.name}}
    elif choice is not None:
        config["toolChoice"] = {"auto": {}}
    return config


def _tool_blocks_as_text(blocks: list[Block]) -> list[Block]:
    """A history's ``toolUse``/``toolResult`` blocks as text, for a request that sends no ``toolConfig``.

    Converse refuses tool blocks without a ``toolConfig`` ("The toolConfig field must be defined when
    using toolUse and toolResult content blocks"), and OpenAI clients send exactly that: the tool
    history with ``tool_choice: "none"`` (the Vercel AI SDK's last step, a forced final answer) or with
    no ``tools`` at all (a summary after an agent loop). Declaring the tools again would let the model
    call one, which ``none`` forbids; written as text, the model still reads what was called and
    what came back."""
    out: list[Block] = []
    for block in blocks:
        if "toolUse" in block:
            use = block["toolUse"]
            args = json.dumps(use["input"], separators=(",", ":"))
            out.append({"text": f"[called tool {use['name']} (call id {use['toolUseId']}) with {args}]"})
        elif "toolResult" in block:
            result = block["toolResult"]
            text = "\n".join(c.get("text", "") for c in result["content"])
            out.append({"text": f"[result of tool call {result['toolUseId']}]: {text}"})
        else:
            out.append(block)
    return out


def build_converse_request(request: ChatRequest, caps: ChatCapabilities) -> ConverseCall:
    system, turns = _merge_turns(request.messages)
    if not turns:
        if not system:
            raise InvalidRequestError("messages must contain some text", field="messages")
        turns = [("user", [{"text": "\n\n".join(system)}])]
        system = []
    if turns[0][0] != "user":
        turns.insert(0, ("user", [{"text": PLACEHOLDER_USER_TURN}]))

    structured: StructuredOutput | None = None
    kwargs: dict[str, Any] = {"modelId": request.model}
    schema = request.json_schema
    tool_config = _tool_config(request)
    if tool_config is not None:
        forced = request.tool_choice is not None and request.tool_choice.mode in ("required", "function")
        if schema is not None and forced:
            # the forced call is the whole answer: no text is left for the format to shape
            # (instructor's RESPONSES_TOOLS mode sends both), so the caller's tools are what is sent
            schema = None
        if schema is not None:
            raise InvalidRequestError(
                "response_format json_schema together with tools is not supported on Bedrock",
                field="response_format",
            )
        kwargs["toolConfig"] = tool_config
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

    if "toolConfig" not in kwargs:
        turns = [(role, _tool_blocks_as_text(blocks)) for role, blocks in turns]

    system_text = "\n\n".join(system)
    if system_text and not caps.system_prompt:
        first_role, first_blocks = turns[0]
        if first_blocks and "text" in first_blocks[0]:
            merged = {"text": system_text + "\n\n" + first_blocks[0]["text"]}
            turns[0] = (first_role, [merged, *first_blocks[1:]])
        else:
            turns[0] = (first_role, [{"text": system_text}, *first_blocks])
        system_text = ""
    if system_text:
        kwargs["system"] = [{"text": system_text}]
    kwargs["messages"] = [{"role": role, "content": blocks} for role, blocks in turns]

    inference: dict[str, Any] = {
        "maxTokens": request.max_tokens if request.max_tokens is not None else caps.default_max_tokens
    }
    if request.temperature is not None:
        inference["temperature"] = float(request.temperature)
    if request.sampling.top_p is not None:
        inference["topP"] = float(request.sampling.top_p)
    stops = [s for s in request.stop or () if s]
    if stops:
        inference["stopSequences"] = stops
    kwargs["inferenceConfig"] = inference
    if request.sampling.user is not None:
        kwargs["requestMetadata"] = {"user": request.sampling.user}
    one_call = request.parallel_tool_calls is False and tool_config is not None
    return ConverseCall(kwargs=kwargs, structured=structured, one_tool_call=one_call)


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


def only_first_tool_call(deltas: Iterator[ChatDelta]) -> Iterator[ChatDelta]:
    """A stream's deltas without the pieces of any tool call after the first (index 0: the first
    ``toolUse`` block started gets the first stable index)."""
    for d in deltas:
        if not d.tool_calls:
            yield d
            continue
        kept = tuple(tc for tc in d.tool_calls if tc.index == 0)
        if kept or d.text or d.finish_reason or d.usage is not None:
            yield replace(d, tool_calls=kept)


def usage_from(raw: Any) -> Usage:
    """``usage`` of a Converse response or stream ``metadata`` event (missing -> zero)."""
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(int(raw.get("inputTokens") or 0), int(raw.get("outputTokens") or 0))


def parse_converse_response(
    response: Mapping[str, Any],
    structured: StructuredOutput | None,
    index: int,
    model: str,
    *,
    one_tool_call: bool = False,
) -> tuple[Choice, Usage]:
    try:
        content = response["output"]["message"]["content"]
        if not isinstance(content, list):
            raise TypeError("content is not a list")
        stop_reason = response.get("stopReason")
        texts: list[str] = []
        tool_text: str | None = None
        calls: list[ToolCall] = []
        for block in content:
            if not isinstance(block, Mapping):
                continue
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block and structured is not None and structured.mode == "tool":
                use = block["toolUse"]
                if use.get("name") == structured.tool_name and tool_text is None:
                    tool_text = tool_input_text(use.get("input"), structured)
            elif "toolUse" in block:
                use = block["toolUse"]
                calls.append(
                    ToolCall(
                        str(use["toolUseId"]),
                        str(use["name"]),
                        json.dumps(use.get("input") or {}, ensure_ascii=False),
                    )
                )
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
    kept = tuple(calls[:1] if one_tool_call else calls)
    choice = Choice(index=index, text=text, finish_reason=reason, tool_calls=kept)
    return choice, usage_from(response.get("usage"))
