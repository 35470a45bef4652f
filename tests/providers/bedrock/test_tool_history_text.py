"""Tool history in a Converse request that sends no ``toolConfig``: Converse refuses ``toolUse`` /
``toolResult`` blocks without one, so they go as text (what was called, what came back); with a
``toolConfig`` they stay blocks. The requests are the ones the client audit (bench/client_compat.py)
saw clients send: the Vercel AI SDK's final step (``tool_choice: "none"``) and a call without tools."""

from __future__ import annotations

from typing import Any

from lib.providers.base import ChatRequest, JsonSchema, Message, Tool, ToolCall, ToolChoice, ToolResult
from lib.providers.bedrock.converse import build_converse_request
from lib.providers.bedrock.models import chat_capabilities

CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})
HISTORY = [
    Message("user", "weather in Oslo?"),
    Message("assistant", (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)),
    Message("tool", (ToolResult("call_1", "sunny, 21 C"),)),
]


def sent(**kw: Any) -> dict[str, Any]:
    request = ChatRequest(CLAUDE, HISTORY, **kw)
    return build_converse_request(request, chat_capabilities(CLAUDE)).kwargs


def blocks(kwargs: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in kwargs["messages"] for b in m["content"]]


def test_tool_choice_none_sends_the_history_as_text() -> None:
    kwargs = sent(tools=(WEATHER,), tool_choice=ToolChoice("none"))
    assert "toolConfig" not in kwargs
    assert [m["role"] for m in kwargs["messages"]] == ["user", "assistant", "user"]
    assert blocks(kwargs) == [
        {"text": "weather in Oslo?"},
        {"text": '[called tool get_weather (call id call_1) with {"city":"Oslo"}]'},
        {"text": "[result of tool call call_1]: sunny, 21 C"},
    ]


def test_no_tools_sends_the_history_as_text() -> None:
    kwargs = sent()
    assert "toolConfig" not in kwargs
    assert not any("toolUse" in b or "toolResult" in b for b in blocks(kwargs))


def test_with_tools_the_history_stays_blocks() -> None:
    kwargs = sent(tools=(WEATHER,))
    assert kwargs["toolConfig"]["tools"][0]["toolSpec"]["name"] == "get_weather"
    use, result = blocks(kwargs)[1:]
    assert use == {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Oslo"}}}
    assert result["toolResult"]["toolUseId"] == "call_1"


def test_structured_output_tool_is_a_tool_config_so_the_history_stays_blocks() -> None:
    schema = JsonSchema("report", {"type": "object", "properties": {"summary": {"type": "string"}}})
    kwargs = sent(json_schema=schema)
    assert kwargs["toolConfig"]["toolChoice"] == {"tool": {"name": "report"}}
    assert any("toolUse" in b for b in blocks(kwargs))


def test_a_forced_call_leaves_no_text_for_a_format_to_shape() -> None:
    """instructor's RESPONSES_TOOLS mode: a forced function and a json_schema format together."""
    schema = JsonSchema("Person", {"type": "object", "properties": {"name": {"type": "string"}}})
    for choice in (ToolChoice("function", "get_weather"), ToolChoice("required")):
        kwargs = sent(tools=(WEATHER,), tool_choice=choice, json_schema=schema)
        assert [t["toolSpec"]["name"] for t in kwargs["toolConfig"]["tools"]] == ["get_weather"]
