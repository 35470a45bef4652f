"""``parallel_tool_calls: false`` on Converse: only the answer's first tool call reaches the client."""

from __future__ import annotations

from lib.providers.base import ChatDelta, ChatRequest, Message, Tool, ToolCallDelta
from lib.providers.bedrock.converse import (
    ConverseCall,
    build_converse_request,
    only_first_tool_call,
    parse_converse_response,
)
from lib.providers.bedrock.models import chat_capabilities

CLAUDE = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
TOOLS = (Tool("a", {"type": "object"}), Tool("b", {"type": "object"}))
ANSWER = {
    "output": {
        "message": {
            "content": [
                {"text": "Calling."},
                {"toolUse": {"toolUseId": "t1", "name": "a", "input": {}}},
                {"toolUse": {"toolUseId": "t2", "name": "b", "input": {"x": 1}}},
            ]
        }
    },
    "stopReason": "tool_use",
}


def call_for(**kw: object) -> ConverseCall:
    request = ChatRequest(CLAUDE, [Message("user", "hi")], **kw)  # type: ignore[arg-type]
    return build_converse_request(request, chat_capabilities(CLAUDE))


def test_only_false_with_tools_asks_for_one_call() -> None:
    assert call_for(tools=TOOLS, parallel_tool_calls=False).one_tool_call
    assert not call_for(tools=TOOLS).one_tool_call
    assert not call_for(tools=TOOLS, parallel_tool_calls=True).one_tool_call
    assert not call_for(parallel_tool_calls=False).one_tool_call


def test_parse_keeps_the_first_call() -> None:
    both, _ = parse_converse_response(ANSWER, None, 0, CLAUDE)
    one, _ = parse_converse_response(ANSWER, None, 0, CLAUDE, one_tool_call=True)
    assert [c.id for c in both.tool_calls] == ["t1", "t2"]
    assert [c.id for c in one.tool_calls] == ["t1"]
    assert one.text == "Calling." and one.finish_reason == "tool_calls"


def test_stream_drops_later_calls_and_their_empty_deltas() -> None:
    deltas = [
        ChatDelta(text="Calling."),
        ChatDelta(tool_calls=(ToolCallDelta(0, "t1", "a"),)),
        ChatDelta(tool_calls=(ToolCallDelta(0, arguments="{}"),)),
        ChatDelta(tool_calls=(ToolCallDelta(1, "t2", "b"),)),
        ChatDelta(tool_calls=(ToolCallDelta(1, arguments='{"x": 1}'),)),
        ChatDelta(finish_reason="tool_calls"),
    ]
    kept = list(only_first_tool_call(iter(deltas)))
    assert kept == [*deltas[:3], deltas[-1]]
