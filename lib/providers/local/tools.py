"""Function calling for SmolLM2: the prompt that offers the tools, the grammar that constrains the
answer, and the parser that turns the generated text back into OpenAI tool calls.

A 135M-parameter model does not reliably follow a tool-call format on its own, so the format is not
left to it: a llama.cpp grammar admits only

- ``<tool_call>{"name": "<one of the tools>", "arguments": {...}}</tool_call>`` where ``arguments``
  matches that tool's ``parameters`` schema (the schema -> GBNF conversion is llama.cpp's own), or
- with ``tool_choice`` ``auto`` (the default), plain text that does not start with ``<``.

``required`` admits only a call, a named function only a call of that function, ``none`` offers no
tools at all (the prompt leaves them out and there is no grammar). One call per answer: a model this
small cannot plan several calls, so ``parallel_tool_calls`` is honoured as "at most one at a time",
which is what ``false`` asks and what ``true`` permits. Earlier tool calls and results in the history
are written into the prompt in the same ``<tool_call>`` / ``<tool_response>`` notation (the Hermes
format SmolLM2's instruct data uses).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lib.errors import InvalidRequestError
from lib.providers.base import ChatRequest, Message, TextPart, Tool, ToolCall, ToolCallDelta, ToolResult
from lib.providers.local.grammar import json_gbnf

OPEN, CLOSE = "<tool_call>", "</tool_call>"
_HEAD = re.compile(r'\s*<tool_call>\s*\{\s*"name"\s*:\s*"(?P<name>[A-Za-z0-9_-]*)"\s*,\s*"arguments"\s*:\s*')
#: Any text that does not start with "<" (so it cannot be mistaken for the start of a call).
_TEXT_RULES = "answer ::= [^<] answer-char*\nanswer-char ::= [\\U00000001-\\U0010FFFF]"


@dataclass(frozen=True, slots=True)
class ToolPlan:
    """What the answer may be: ``auto`` (text or one call) or ``required`` (one call), among ``tools``."""

    mode: Literal["auto", "required"]
    tools: tuple[Tool, ...]

    @property
    def cache_key(self) -> str:
        return json.dumps(
            [self.mode, [[t.name, t.parameters] for t in self.tools]], sort_keys=True, separators=(",", ":")
        )


def plan_for(request: ChatRequest) -> ToolPlan | None:
    """The tool plan of ``request`` (``None``: no tools offered, the answer is free text)."""
    choice = request.tool_choice
    if not request.tools or (choice is not None and choice.mode == "none"):
        return None
    # a forced call is the whole answer, so a text format has nothing to shape (instructor's
    # RESPONSES_TOOLS mode sends both); only a possible text answer makes the pair ambiguous
    forced = choice is not None and choice.mode in ("required", "function")
    if request.json_schema is not None and not forced:
        raise InvalidRequestError(
            "response_format json_schema together with tools is not supported by the local model",
            field="response_format",
        )
    if choice is not None and choice.mode == "function":
        chosen = tuple(t for t in request.tools if t.name == choice.name)
        if not chosen:
            raise InvalidRequestError(
                f"tool_choice names {choice.name!r}, which is not in tools", field="tool_choice"
            )
        return ToolPlan("required", chosen)
    mode: Literal["auto", "required"] = (
        "required" if choice is not None and choice.mode == "required" else "auto"
    )
    return ToolPlan(mode, tuple(request.tools))


# --- grammar ----------------------------------------------------------------------------------


def _hoist_refs(schema: dict[str, Any], prefix: str, defs: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its local ``$ref`` targets copied into ``defs`` under names unique to this tool.

    llama.cpp's converter names a referenced rule after the last segment of the reference, so two
    tools that both define ``#/$defs/Item`` would share one rule; hoisting with a per-tool prefix keeps
    them apart (and makes the references resolve against the combined schema)."""
    names: dict[str, str] = {}

    def target(ref: str) -> Any:
        node: Any = schema
        for raw in ref[2:].split("/") if ref != "#" else ():
            key = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            elif isinstance(node, dict) and key in node:
                node = node[key]
            else:
                raise InvalidRequestError(f"tools: unresolvable $ref {ref!r}", field="tools")
        return node

    def walk(node: Any) -> Any:
        if isinstance(node, list):
            return [walk(x) for x in node]
        if not isinstance(node, dict):
            return node
        out = {k: walk(v) for k, v in node.items() if k not in ("$defs", "definitions", "$ref")}
        ref = node.get("$ref")
        if ref is not None:
            if not isinstance(ref, str) or not ref.startswith("#"):
                raise InvalidRequestError(
                    f"tools: only local $ref ('#/...') is supported, got {ref!r}", field="tools"
                )
            name = names.get(ref)
            if name is None:
                name = names[ref] = f"{prefix}-ref{len(names)}"
                defs[name] = {}
                defs[name] = walk(target(ref))
            out["$ref"] = f"#/$defs/{name}"
        return out

    result = walk(schema)
    assert isinstance(result, dict)
    return result


def calls_schema(tools: Sequence[Tool]) -> dict[str, Any]:
    """One JSON schema for "a call of one of ``tools``": ``{"name": <const>, "arguments": <params>}``."""
    defs: dict[str, Any] = {}
    alternatives = [
        {
            "type": "object",
            "properties": {
                "name": {"const": tool.name},
                "arguments": _hoist_refs(tool.parameters or {"type": "object"}, f"t{i}", defs),
            },
            "required": ["name", "arguments"],
        }
        for i, tool in enumerate(tools)
    ]
    out: dict[str, Any] = {"anyOf": alternatives}
    if defs:
        out["$defs"] = defs
    return out


def grammar_text(plan: ToolPlan) -> str:
    """The GBNF grammar of ``plan`` (the caller compiles it with ``LlamaGrammar.from_string``)."""
    calls = json_gbnf(calls_schema(plan.tools), field="tools", what="tools: a parameters schema")
    # The converter's start rule becomes ``call-json``; ours wraps it in the call tags.
    calls = re.sub(r"^root ::=", "call-json ::=", calls, count=1, flags=re.MULTILINE)
    call = f'"{OPEN}" call-json "{CLOSE}"'
    if plan.mode == "required":
        return f"root ::= {call}\n{calls}"
    return f"root ::= {call} | answer\n{_TEXT_RULES}\n{calls}"


# --- prompt -----------------------------------------------------------------------------------


def _arguments_value(arguments: str) -> Any:
    try:
        return json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return arguments


def call_text(call: ToolCall) -> str:
    body = json.dumps({"name": call.name, "arguments": _arguments_value(call.arguments)}, ensure_ascii=False)
    return f"{OPEN}{body}{CLOSE}"


def tools_instruction(plan: ToolPlan) -> str:
    listing = "\n".join(
        json.dumps(
            {"name": t.name, "description": t.description, "parameters": t.parameters},
            ensure_ascii=False,
            separators=(",", ":"),
        )
        for t in plan.tools
    )
    example = f'{OPEN}{{"name": <function name>, "arguments": <arguments object>}}{CLOSE}'
    if plan.mode == "auto":
        ask = f"When a function helps, answer only with a call, written as:\n{example}\n"
        ask += "Otherwise answer in text."
    elif len(plan.tools) == 1:
        ask = f"Answer only with a call of the function {plan.tools[0].name}, written as:\n{example}"
    else:
        ask = f"Answer only with a call of one of these functions, written as:\n{example}"
    return f"You can call these functions (each with a JSON schema of its arguments):\n{listing}\n{ask}"


def chat_messages(messages: Sequence[Message], plan: ToolPlan | None) -> list[dict[str, str]]:
    """``messages`` as ``{"role", "content"}`` dicts for the chat template: tool calls and results as
    text; the tools offered by ``plan`` described in the system message."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    out: list[dict[str, str]] = []
    for m in messages:
        if m.role == "tool":
            results = [p for p in m.parts if isinstance(p, ToolResult)]
            text = "\n".join(
                "<tool_response>"
                + json.dumps(
                    {"name": names.get(r.tool_call_id, ""), "content": r.content}, ensure_ascii=False
                )
                + "</tool_response>"
                for r in results
            )
            out.append({"role": "tool", "content": text or m.text})
            continue
        text = "".join(p.text for p in m.parts if isinstance(p, TextPart))
        calls = "\n".join(call_text(c) for c in m.tool_calls)
        out.append({"role": m.role, "content": "\n".join(x for x in (text, calls) if x)})
    if plan is not None:
        hint = tools_instruction(plan)
        if out and out[0]["role"] == "system":
            out[0] = {"role": "system", "content": out[0]["content"] + "\n\n" + hint}
        else:
            out.insert(0, {"role": "system", "content": hint})
    return out


# --- answer -----------------------------------------------------------------------------------


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class CallParser:
    """Reads generated text as it arrives: text (for a text answer) or the pieces of one tool call.

    ``feed`` yields ``str`` (answer text) and ``ToolCallDelta`` (the call's id and name once the name
    is complete, then its ``arguments`` JSON as it grows; the closing tag is not part of it)."""

    call_id: str = field(default_factory=new_call_id)
    mode: Literal["undecided", "text", "call"] = "undecided"
    name: str | None = None
    arguments: str = ""
    complete: bool = False
    _buf: str = ""
    _depth: int = 0
    _in_string: bool = False
    _escaped: bool = False

    def feed(self, text: str) -> Iterator[str | ToolCallDelta]:
        if not text:
            return
        if self.mode == "text":
            yield text
            return
        self._buf += text
        if self.mode == "undecided":  # the grammar starts a call with "<" and text with anything else
            if not self._buf.startswith("<"):
                self.mode = "text"
                out, self._buf = self._buf, ""
                yield out
                return
            self.mode = "call"
        if self.name is None:
            head = _HEAD.match(self._buf)
            if head is None:
                return
            self.name = head.group("name")
            self._buf = self._buf[head.end() :]
            yield ToolCallDelta(0, self.call_id, self.name, "")
        piece = self._arguments_piece()
        if piece:
            self.arguments += piece
            yield ToolCallDelta(0, arguments=piece)

    def _arguments_piece(self) -> str:
        """Consume the buffer up to the end of the arguments object (the rest is the closing tag)."""
        if self.complete:
            self._buf = ""
            return ""
        taken = 0
        for ch in self._buf:
            taken += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif ch == "\\":
                    self._escaped = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    self.complete = True
                    break
        piece, self._buf = self._buf[:taken], ""
        return piece.lstrip() if not self.arguments else piece

    def tool_call(self) -> ToolCall | None:
        """The call, once its name is known (its arguments may be cut short by ``max_tokens``)."""
        if self.name is None:
            return None
        return ToolCall(self.call_id, self.name, self.arguments)
