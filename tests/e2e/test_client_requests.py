"""Requests real OpenAI clients send, reproduced byte for byte with the pinned openai SDK against the
service in front of the loopback Bedrock stand-in (which validates tool history as Converse does).
Each was found by the client audit (``bench/client_compat.py``); the body is the one the client sent.

- The Vercel AI SDK forces a final text answer with ``toolChoice: "none"`` on the last step: the tool
  history goes with ``tool_choice: "none"``, and Converse refuses ``toolUse``/``toolResult`` blocks
  without a ``toolConfig``; the same for a call that sends the history without ``tools``.
- instructor's ``RESPONSES_TOOLS`` mode sends a forced function call and ``text.format`` json_schema
  together: the call is the whole answer, so the format has nothing to shape and is not a refusal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.bedrock_mock import CONVERSE, CONVERSE_STREAM, BedrockMock
from tests.support.cloud_service import sdk_client, upstream_env
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "client-requests-key"
CLAUDE = "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
#: The AI SDK's (ai 6, @ai-sdk/openai 3) second step of generateText({tools, prepareStep}) as captured.
AI_SDK_LAST_STEP: dict[str, Any] = {
    "max_tokens": 60,
    "messages": [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_0_get_weather",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"sample"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_0_get_weather", "content": "sunny, 21 C"},
    ],
    "tools": [WEATHER],
    "tool_choice": "none",
}


PERSON: dict[str, Any] = {
    "properties": {"name": {"title": "Name", "type": "string"}, "age": {"title": "Age", "type": "integer"}},
    "required": ["name", "age"],
    "title": "Person",
    "type": "object",
    "additionalProperties": False,
}
#: instructor 1.17 ``from_openai(client, mode=Mode.RESPONSES_TOOLS).responses.create(response_model=Person)``.
INSTRUCTOR_RESPONSES_TOOLS: dict[str, Any] = {
    "input": [{"role": "user", "content": "Invent a person."}],
    "text": {"format": {"type": "json_schema", "name": "Person", "strict": True, "schema": PERSON}},
    "tool_choice": {"type": "function", "name": "Person"},
    "tools": [
        {
            "type": "function",
            "name": "Person",
            "parameters": PERSON,
            "description": "Correctly extracted `Person` with all the required parameters with correct types",
        }
    ],
}


@pytest.fixture(scope="module")
def bedrock() -> Iterator[BedrockMock]:
    with BedrockMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def service(bedrock: BedrockMock) -> Iterator[Service]:
    with Service(upstream_env(KEY, "client-requests", bedrock=bedrock), workers=1) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, bedrock: BedrockMock) -> Iterator[openai.OpenAI]:
    with sdk_client(service, KEY, [bedrock]) as client:
        yield client


def history_as_sent(bedrock: BedrockMock, operation: str) -> list[dict[str, Any]]:
    """The Converse request's blocks: no tool blocks and no toolConfig, the call and result as text."""
    (call,) = bedrock.calls(operation)
    assert "toolConfig" not in call.json
    blocks = [b for m in call.json["messages"] for b in m["content"]]
    assert not any("toolUse" in b or "toolResult" in b for b in blocks)
    return blocks


def test_ai_sdk_last_step_with_tool_choice_none(sdk: openai.OpenAI, bedrock: BedrockMock) -> None:
    out = sdk.chat.completions.create(model=CLAUDE, **AI_SDK_LAST_STEP)
    assert out.choices[0].finish_reason == "stop" and not out.choices[0].message.tool_calls
    assert "sunny, 21 C" in (out.choices[0].message.content or "")
    blocks = history_as_sent(bedrock, CONVERSE)
    assert blocks[1] == {
        "text": '[called tool get_weather (call id call_0_get_weather) with {"city":"sample"}]'
    }
    assert blocks[2] == {"text": "[result of tool call call_0_get_weather]: sunny, 21 C"}


def test_streamed_tool_history_without_tools(sdk: openai.OpenAI, bedrock: BedrockMock) -> None:
    body = {k: v for k, v in AI_SDK_LAST_STEP.items() if k not in ("tools", "tool_choice")}
    stream = sdk.chat.completions.create(model=CLAUDE, stream=True, **body)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "sunny, 21 C" in text
    history_as_sent(bedrock, CONVERSE_STREAM)


def test_responses_function_call_output_with_tool_choice_none(
    sdk: openai.OpenAI, bedrock: BedrockMock
) -> None:
    call = WEATHER["function"]
    out = sdk.responses.create(
        model=CLAUDE,
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "What is the weather in Oslo?"}]},
            {
                "type": "function_call",
                "call_id": "call_7",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
            },
            {"type": "function_call_output", "call_id": "call_7", "output": json.dumps("sunny, 21 C")},
        ],
        tools=[{"type": "function", "name": call["name"], "parameters": call["parameters"], "strict": True}],
        tool_choice="none",
        max_output_tokens=60,
    )
    assert out.status == "completed" and "sunny, 21 C" in out.output_text
    assert [i.type for i in out.output] == ["message"]
    history_as_sent(bedrock, CONVERSE)


def test_instructor_responses_tools_forced_call_with_text_format(
    sdk: openai.OpenAI, bedrock: BedrockMock
) -> None:
    out = sdk.responses.create(model=CLAUDE, **INSTRUCTOR_RESPONSES_TOOLS)
    (call,) = [i for i in out.output if i.type == "function_call"]
    assert call.name == "Person" and json.loads(call.arguments) == {"name": "mock", "age": 0}
    (sent,) = bedrock.calls(CONVERSE)
    config = sent.json["toolConfig"]
    assert config["toolChoice"] == {"tool": {"name": "Person"}}
    assert [t["toolSpec"]["name"] for t in config["tools"]] == ["Person"]
    assert config["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["name", "age"]


def test_text_format_with_tools_and_auto_choice_is_still_refused(sdk: openai.OpenAI) -> None:
    body = {**INSTRUCTOR_RESPONSES_TOOLS, "tool_choice": "auto"}
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model=CLAUDE, **body)
    assert err.value.status_code == 400 and "together with tools" in err.value.message
