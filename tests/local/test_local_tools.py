"""Function calling on SmolLM2: the grammar forces the call format and each tool's arguments schema,
the parser turns the generated text into OpenAI tool calls (streamed and not), history tool turns are
written into the prompt. The model tests run the real SmolLM2 with small ``max_tokens``."""

from __future__ import annotations

import json
from typing import Any

import jsonschema_rs
import pytest

from lib.errors import InvalidRequestError
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    JsonSchema,
    Message,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    ToolResult,
)
from lib.providers.deadline import Deadline
from lib.providers.local import LocalProvider
from lib.providers.local.grammar import json_gbnf
from lib.providers.local.provider import _assemble
from lib.providers.local.tools import (
    CallParser,
    ToolPlan,
    calls_schema,
    chat_messages,
    grammar_text,
    plan_for,
)
from tests.local.conftest import needs_models

WEATHER = Tool(
    "get_weather",
    {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "Current weather in a city",
)
ADD = Tool(
    "add",
    {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
    "Add two integers",
)
ASK = [Message("user", "What is the weather in Paris, in celsius?")]


def req(**kw: Any) -> ChatRequest:
    values: dict[str, Any] = {
        "model": "local",
        "messages": ASK,
        "temperature": 0.0,
        "max_tokens": 60,
        "tools": (WEATHER, ADD),
    }
    values.update(kw)
    return ChatRequest(**values)


def feed_all(text: str, step: int) -> tuple[str, list[ToolCallDelta], CallParser]:
    parser = CallParser()
    out: list[str | ToolCallDelta] = []
    for i in range(0, len(text), step):
        out += parser.feed(text[i : i + step])
    return (
        "".join(x for x in out if isinstance(x, str)),
        [x for x in out if isinstance(x, ToolCallDelta)],
        parser,
    )


# --- without the model ------------------------------------------------------------------------


@pytest.mark.parametrize("step", [1, 3, 1000])
def test_parser_reads_a_call_in_any_chunking(step: int) -> None:
    raw = '<tool_call>{"name": "get_weather", "arguments": {"city": "P{a}\\"r", "n": [1, {}]} }</tool_call>'
    text, deltas, parser = feed_all(raw, step)
    assert text == ""
    assert deltas[0].id and deltas[0].id.startswith("call_") and deltas[0].name == "get_weather"
    assert all(d.index == 0 and d.name is None for d in deltas[1:])
    arguments = "".join(d.arguments for d in deltas)
    assert json.loads(arguments) == {"city": 'P{a}"r', "n": [1, {}]}
    assert parser.complete and parser.tool_call() == ToolCall(deltas[0].id, "get_weather", arguments)


def test_parser_passes_text_through_and_keeps_an_unfinished_call() -> None:
    text, deltas, parser = feed_all("Sunny <b>today</b>", 2)
    assert text == "Sunny <b>today</b>" and deltas == [] and parser.tool_call() is None
    _, deltas, parser = feed_all('<tool_call>{"name": "add", "arguments": {"a": 1', 4)
    assert not parser.complete
    assert parser.tool_call() == ToolCall(parser.call_id, "add", '{"a": 1')


def test_plan_follows_tool_choice() -> None:
    assert plan_for(req()) == ToolPlan("auto", (WEATHER, ADD))
    assert plan_for(req(tool_choice=ToolChoice("required"))) == ToolPlan("required", (WEATHER, ADD))
    assert plan_for(req(tool_choice=ToolChoice("function", "add"))) == ToolPlan("required", (ADD,))
    assert plan_for(req(tool_choice=ToolChoice("none"))) is None
    assert plan_for(req(tools=())) is None
    with pytest.raises(InvalidRequestError) as exc:
        plan_for(req(tool_choice=ToolChoice("function", "nope")))
    assert exc.value.field == "tool_choice"
    with pytest.raises(InvalidRequestError) as exc:
        plan_for(req(json_schema=JsonSchema("x", {"type": "object"})))
    assert exc.value.field == "response_format"


def test_refs_of_each_tool_stay_apart() -> None:
    def with_item(kind: str) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {"item": {"$ref": "#/$defs/Item"}},
            "required": ["item"],
            "$defs": {"Item": {"type": kind}},
        }

    schema = calls_schema([Tool("a", with_item("string")), Tool("b", with_item("integer"))])
    assert sorted(schema["$defs"].items()) == [
        ("t0-ref0", {"type": "string"}),
        ("t1-ref0", {"type": "integer"}),
    ]
    refs = [alt["properties"]["arguments"]["properties"]["item"]["$ref"] for alt in schema["anyOf"]]
    assert refs == ["#/$defs/t0-ref0", "#/$defs/t1-ref0"]
    bad = Tool("c", {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/x"}}})
    with pytest.raises(InvalidRequestError, match="local"):
        calls_schema([bad])
    with pytest.raises(InvalidRequestError, match="unresolvable"):
        calls_schema([Tool("d", {"type": "object", "properties": {"x": {"$ref": "#/$defs/Nope"}}})])


def test_history_tool_turns_are_written_into_the_prompt() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "celsius"}')
    history = [
        Message("system", "Be brief."),
        Message("user", "Weather in Paris?"),
        Message("assistant", (TextPart("Checking."), call)),
        Message("tool", (ToolResult("call_1", "18 C, sunny"),)),
    ]
    rendered = chat_messages(history, ToolPlan("auto", (WEATHER,)))
    assert [m["role"] for m in rendered] == ["system", "user", "assistant", "tool"]
    assert rendered[0]["content"].startswith("Be brief.\n\nYou can call these functions")
    assert '"name":"get_weather"' in rendered[0]["content"]
    assert rendered[2]["content"] == (
        'Checking.\n<tool_call>{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}'
        "</tool_call>"
    )
    assert json.loads(
        rendered[3]["content"].removeprefix("<tool_response>").removesuffix("</tool_response>")
    ) == {
        "name": "get_weather",
        "content": "18 C, sunny",
    }
    assert chat_messages(history, None)[0] == {"role": "system", "content": "Be brief."}


def test_assemble_needs_a_finish_reason() -> None:
    with pytest.raises(Exception, match="without a finish reason"):
        _assemble(iter([ChatDelta(text="x")]))


# --- with the model ---------------------------------------------------------------------------


def check_call(call: ToolCall, tool: Tool) -> dict[str, Any]:
    assert call.id.startswith("call_") and call.name == tool.name
    value = json.loads(call.arguments)
    jsonschema_rs.validate(tool.parameters, value)
    return value


@pytest.mark.local
@needs_models
def test_grammar_compiles_for_both_modes() -> None:
    from llama_cpp import LlamaGrammar

    for mode in ("auto", "required"):
        text = grammar_text(ToolPlan(mode, (WEATHER, ADD)))
        assert text.startswith("root ::= ") and "call-json ::=" in text
        LlamaGrammar.from_string(text, verbose=False)


@pytest.mark.local
@needs_models
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_forced_function_call_matches_its_schema(local_provider: LocalProvider, temperature: float) -> None:
    request = req(tool_choice=ToolChoice("function", "get_weather"), temperature=temperature, max_tokens=80)
    choice = local_provider.chat(request, Deadline(60)).choices[0]
    assert choice.finish_reason == "tool_calls" and choice.text == ""
    assert len(choice.tool_calls) == 1
    check_call(choice.tool_calls[0], WEATHER)


@pytest.mark.local
@needs_models
def test_required_picks_one_of_the_tools(local_provider: LocalProvider) -> None:
    ask = [Message("user", "Add 2 and 3.")]
    result = local_provider.chat(req(messages=ask, tool_choice=ToolChoice("required"), n=2), Deadline(60))
    for choice in result.choices:
        assert choice.finish_reason == "tool_calls" and len(choice.tool_calls) == 1
        call = choice.tool_calls[0]
        check_call(call, {t.name: t for t in (WEATHER, ADD)}[call.name])
    assert result.choices[0].tool_calls[0].id != result.choices[1].tool_calls[0].id


@pytest.mark.local
@needs_models
def test_streamed_call_equals_the_whole_answer(local_provider: LocalProvider) -> None:
    request = req(tool_choice=ToolChoice("function", "get_weather"), max_tokens=80)
    whole = local_provider.chat(request, Deadline(60)).choices[0].tool_calls[0]
    deltas = list(local_provider.chat_stream(request, Deadline(60)))
    calls = [tc for d in deltas for tc in d.tool_calls]
    assert calls[0].name == "get_weather" and calls[0].id and calls[0].id.startswith("call_")
    assert len(calls) > 2  # the arguments really arrive in pieces
    assert "".join(tc.arguments for tc in calls) == whole.arguments
    assert deltas[-1].finish_reason == "tool_calls" and deltas[-1].usage is not None
    assert all(d.finish_reason is None for d in deltas[:-1])


@pytest.mark.local
@needs_models
def test_auto_answers_text_or_a_valid_call(local_provider: LocalProvider) -> None:
    for ask in (ASK, [Message("user", "Say hello to Sam.")]):
        choice = local_provider.chat(req(messages=ask), Deadline(60)).choices[0]
        if choice.tool_calls:
            assert choice.finish_reason == "tool_calls"
            call = choice.tool_calls[0]
            check_call(call, {t.name: t for t in (WEATHER, ADD)}[call.name])
        else:
            assert choice.text.strip() and not choice.text.startswith("<")


@pytest.mark.local
@needs_models
def test_none_offers_no_tools_and_history_is_read(local_provider: LocalProvider) -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris", "unit": "celsius"}')
    history = [
        *ASK,
        Message("assistant", (call,)),
        Message("tool", (ToolResult("call_1", "It is 18 degrees and sunny in Paris."),)),
    ]
    plain = local_provider.chat(req(tool_choice=ToolChoice("none"), max_tokens=8), Deadline(60))
    assert plain.choices[0].tool_calls == () and plain.choices[0].text.strip()
    after = local_provider.chat(
        req(messages=history, tool_choice=ToolChoice("none"), max_tokens=8), Deadline(60)
    )
    assert after.choices[0].tool_calls == ()
    assert after.usage.prompt_tokens > plain.usage.prompt_tokens + 20  # the call and its result are read


@pytest.mark.local
@needs_models
def test_call_cut_by_max_tokens_finishes_with_length(local_provider: LocalProvider) -> None:
    request = req(tool_choice=ToolChoice("function", "get_weather"), max_tokens=12)
    choice = local_provider.chat(request, Deadline(60)).choices[0]
    assert choice.finish_reason == "length"
    deltas = list(local_provider.chat_stream(request, Deadline(60)))
    assert deltas[-1].finish_reason == "length"


@pytest.mark.local
@needs_models
def test_grammar_strings_admit_no_raw_control_characters() -> None:
    """llama.cpp's converter lets a raw newline into a JSON string, which ``json.loads`` refuses."""
    gbnf = json_gbnf({"type": "object", "properties": {"s": {"type": "string"}}}, field="f", what="w")
    (char,) = [line for line in gbnf.splitlines() if line.startswith("char ::=")]
    assert char.startswith('char ::= [^"\\\\\\x00-\\x1F] | ')
    assert "\\x00-\\x1F" in grammar_text(ToolPlan("auto", (WEATHER,)))
    with pytest.raises(InvalidRequestError) as exc:
        json_gbnf(
            {"type": "object", "properties": {"s": {"type": "strange"}}}, field="tools", what="tools: x"
        )
    assert exc.value.field == "tools" and exc.value.message.startswith(
        "tools: x cannot be turned into a grammar"
    )
