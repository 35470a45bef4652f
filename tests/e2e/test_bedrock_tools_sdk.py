"""Tools and images on Bedrock models, driven by the official openai SDK through the service (gunicorn
on a loopback port) in front of a loopback Bedrock stand-in that speaks Converse JSON and the
ConverseStream AWS event-stream framing; and a two-step tool conversation that moves between
Bedrock and OpenAI (tool call ids and arguments survive both translations)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from tests.support.bedrock_mock import CONVERSE, CONVERSE_STREAM, BedrockMock
from tests.support.cloud_service import cloud_service, sdk_client
from tests.support.openai_mock import CHAT, OpenAIMock
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "bedrock-tools-key"
CLAUDE = "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA_LITE = "bedrock.us.amazon.nova-lite-v1:0"
LLAMA = "bedrock.us.meta.llama3-3-70b-instruct-v1:0"
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TIME: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[BedrockMock, OpenAIMock]]:
    with BedrockMock() as bedrock, OpenAIMock() as oai:
        yield bedrock, oai


@pytest.fixture(scope="module")
def service(mocks: tuple[BedrockMock, OpenAIMock]) -> Iterator[Service]:
    bedrock, oai = mocks
    with cloud_service(KEY, oai, bedrock, "tools-e2e") as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, mocks: tuple[BedrockMock, OpenAIMock]) -> Iterator[openai.OpenAI]:
    with sdk_client(service, KEY, mocks) as client:
        yield client


def test_tools_become_tool_config_and_tool_use_becomes_tool_calls(
    sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]
) -> None:
    bedrock, _ = mocks
    messages: list[Any] = [{"role": "user", "content": "weather and time in Oslo?"}]
    out = sdk.chat.completions.create(
        model=CLAUDE, messages=messages, tools=[WEATHER, TIME], tool_choice="required"
    )
    choice = out.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me look that up."
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [  # type: ignore[union-attr]
        ("tooluse_0_get_weather", "get_weather", {"city": "mock"}),
        ("tooluse_1_get_time", "get_time", {"tz": "mock"}),
    ]
    sent = bedrock.calls(CONVERSE)[0].json
    assert sent["toolConfig"]["toolChoice"] == {"any": {}}
    spec = sent["toolConfig"]["tools"][0]["toolSpec"]
    assert spec["name"] == "get_weather" and spec["inputSchema"]["json"]["required"] == ["city"]

    messages.append(choice.message.model_dump(exclude_none=True))
    messages += [{"role": "tool", "tool_call_id": c.id, "content": f"{c.function.name} ok"} for c in calls]  # type: ignore[union-attr]
    second = sdk.chat.completions.create(model=CLAUDE, messages=messages, tools=[WEATHER, TIME])
    assert second.choices[0].message.content == "tool said: get_weather ok; get_time ok"
    assert second.choices[0].finish_reason == "stop"
    history = bedrock.calls(CONVERSE)[1].json["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]
    assert history[1]["content"][1] == {
        "toolUse": {"toolUseId": "tooluse_0_get_weather", "name": "get_weather", "input": {"city": "mock"}}
    }
    assert history[2]["content"][1] == {
        "toolResult": {"toolUseId": "tooluse_1_get_time", "content": [{"text": "get_time ok"}]}
    }
    assert (
        "toolChoice" not in bedrock.calls(CONVERSE)[1].json["toolConfig"]
    )  # no tool_choice: Converse's auto


def test_tool_choice_function_and_none(sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]) -> None:
    bedrock, _ = mocks
    msgs: Any = [{"role": "user", "content": "time?"}]
    tc: Any = {"type": "function", "function": {"name": "get_time"}}
    out = sdk.chat.completions.create(model=CLAUDE, messages=msgs, tools=[WEATHER, TIME], tool_choice=tc)
    assert [c.function.name for c in out.choices[0].message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]
    assert bedrock.calls(CONVERSE)[0].json["toolConfig"]["toolChoice"] == {"tool": {"name": "get_time"}}
    plain = sdk.chat.completions.create(model=CLAUDE, messages=msgs, tools=[WEATHER], tool_choice="none")
    assert plain.choices[0].message.tool_calls is None
    assert "toolConfig" not in bedrock.calls(CONVERSE)[1].json


def test_streamed_tool_use_becomes_tool_call_deltas(
    sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]
) -> None:
    bedrock, _ = mocks
    stream = sdk.chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "go"}], tools=[WEATHER, TIME], stream=True
    )
    text = ""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for c in chunk.choices:
            text += c.delta.content or ""
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
            finish = c.finish_reason or finish
    assert text == "Let me look."
    assert finish == "tool_calls"
    assert calls == {
        0: {"id": "tooluse_0_get_weather", "name": "get_weather", "arguments": '{"city": "mock"}'},
        1: {"id": "tooluse_1_get_time", "name": "get_time", "arguments": '{"tz": "mock"}'},
    }
    assert len(bedrock.calls(CONVERSE_STREAM)) == 1


def test_two_step_tool_conversation_across_providers(
    sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]
) -> None:
    bedrock, oai = mocks
    for first, second in ((CLAUDE, "gpt-4o"), ("gpt-4o", CLAUDE)):
        msgs: list[Any] = [{"role": "user", "content": "weather?"}]
        step1 = sdk.chat.completions.create(model=first, messages=msgs, tools=[WEATHER])
        call = (step1.choices[0].message.tool_calls or [])[0]
        msgs.append(step1.choices[0].message.model_dump(exclude_none=True))
        msgs.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
        step2 = sdk.chat.completions.create(model=second, messages=msgs, tools=[WEATHER])
        assert step2.choices[0].message.content == "tool said: sunny"
    # OpenAI saw Bedrock's tool call id and arguments; Bedrock saw OpenAI's
    oai_history = oai.calls(CHAT)[0].json["messages"]
    assert oai_history[1]["tool_calls"][0]["id"] == "tooluse_0_get_weather"
    assert json.loads(oai_history[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "mock"}
    assert oai_history[2] == {"role": "tool", "tool_call_id": "tooluse_0_get_weather", "content": "sunny"}
    bedrock_history = bedrock.calls(CONVERSE)[-1].json["messages"]
    assert bedrock_history[1]["content"] == [
        {"toolUse": {"toolUseId": "call_0_get_weather", "name": "get_weather", "input": {"city": "sample"}}}
    ]


def test_images_go_to_converse_as_image_blocks(
    sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]
) -> None:
    bedrock, _ = mocks
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content: Any = [{"type": "text", "text": "what is it"}, {"type": "image_url", "image_url": {"url": url}}]
    sdk.chat.completions.create(model=NOVA_LITE, messages=[{"role": "user", "content": content}])
    block = bedrock.calls(CONVERSE)[0].json["messages"][0]["content"][1]
    assert block["image"]["format"] == "png"
    assert base64.b64decode(block["image"]["source"]["bytes"]) == PNG  # botocore base64-encodes blobs
    with pytest.raises(openai.BadRequestError, match="does not accept images"):
        sdk.chat.completions.create(
            model="bedrock.us.amazon.nova-micro-v1:0", messages=[{"role": "user", "content": content}]
        )


def test_what_converse_cannot_honour_is_400_naming_the_field(sdk: openai.OpenAI) -> None:
    msgs: Any = [{"role": "user", "content": "x"}]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("seed", {"model": CLAUDE, "seed": 1}),
        ("logprobs", {"model": CLAUDE, "logprobs": True}),
        ("frequency_penalty", {"model": CLAUDE, "frequency_penalty": 0.5}),
        ("tool_choice", {"model": LLAMA, "tools": [WEATHER], "tool_choice": "required"}),
        ("tools", {"model": "bedrock.amazon.titan-text-express-v1", "tools": [WEATHER]}),
    ]
    for param, kw in cases:
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(messages=msgs, **kw)
        assert info.value.body["param"] == param, kw  # type: ignore[index]


def test_top_p_and_user_are_honoured(sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]) -> None:
    bedrock, _ = mocks
    sdk.chat.completions.create(
        model=CLAUDE, messages=[{"role": "user", "content": "x"}], top_p=0.3, user="s-9"
    )
    sent = bedrock.calls(CONVERSE)[0].json
    assert sent["inferenceConfig"]["topP"] == 0.3 and sent["requestMetadata"] == {"user": "s-9"}


class Grade(BaseModel):
    score: int
    reason: str


def test_parse_on_claude_uses_a_forced_tool(
    sdk: openai.OpenAI, mocks: tuple[BedrockMock, OpenAIMock]
) -> None:
    bedrock, _ = mocks
    out = sdk.chat.completions.parse(
        model=CLAUDE, messages=[{"role": "user", "content": "grade"}], response_format=Grade
    )
    assert isinstance(out.choices[0].message.parsed, Grade)
    assert bedrock.calls(CONVERSE)[0].json["toolConfig"]["toolChoice"] == {"tool": {"name": "Grade"}}
