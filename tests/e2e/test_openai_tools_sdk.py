"""The official openai SDK, unchanged, against the service (gunicorn on a loopback port) in front of a
loopback OpenAI stand-in: tools, tool results, streamed tool-call deltas, structured output parsed into
a pydantic model, images as data: URLs, logprobs and sampling fields passed through."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel

from tests.support.cloud_service import sdk_client, upstream_env
from tests.support.openai_mock import CHAT, OpenAIMock
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "tools-key"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    },
}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def service(upstream: OpenAIMock) -> Iterator[Service]:
    with Service(upstream_env(KEY, "tools", oai=upstream), workers=1) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, upstream: OpenAIMock) -> Iterator[openai.OpenAI]:
    with sdk_client(service, KEY, [upstream]) as client:
        yield client


def test_tool_call_then_tool_result_round_trip(sdk: openai.OpenAI, upstream: OpenAIMock) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather and time in Oslo?"}]
    first = sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER, TIME])  # type: ignore[arg-type, list-item]
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments) == {"city": "sample", "days": 1}  # type: ignore[union-attr]
    sent = upstream.calls(CHAT)[0].json
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert sent["tools"][0]["function"]["parameters"]["required"] == ["city"]

    messages.append(choice.message.model_dump(exclude_none=True))
    for c in calls:
        messages.append({"role": "tool", "tool_call_id": c.id, "content": f"result of {c.function.name}"})  # type: ignore[union-attr]
    second = sdk.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER, TIME])  # type: ignore[arg-type, list-item]
    assert second.choices[0].message.content == "tool said: result of get_weather; result of get_time"
    history = upstream.calls(CHAT)[1].json["messages"]
    assert history[1]["role"] == "assistant" and history[1]["tool_calls"][1]["id"] == calls[1].id
    assert history[2] == {"role": "tool", "tool_call_id": calls[0].id, "content": "result of get_weather"}


def test_tool_choice_and_parallel_flag_pass_through(sdk: openai.OpenAI, upstream: OpenAIMock) -> None:
    out = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "time?"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        parallel_tool_calls=False,
    )
    assert [c.function.name for c in out.choices[0].message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]
    sent = upstream.calls(CHAT)[0].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False


def test_streamed_tool_call_deltas_accumulate(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            for tc in c.delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] += tc.id or ""
                slot["name"] += (tc.function.name or "") if tc.function else ""
                slot["arguments"] += (tc.function.arguments or "") if tc.function else ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert calls[0]["name"] == "get_weather" and calls[0]["id"] == "call_0_get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "sample", "days": 1}
    assert json.loads(calls[1]["arguments"]) == {"tz": "sample"}
    assert usage is not None and usage.total_tokens == 30


class Grade(BaseModel):
    score: int
    reason: str


def test_parse_into_a_pydantic_model(sdk: openai.OpenAI, upstream: OpenAIMock) -> None:
    out = sdk.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "grade it"}], response_format=Grade
    )
    parsed = out.choices[0].message.parsed
    assert parsed == Grade(score=1, reason="sample")
    fmt = upstream.calls(CHAT)[0].json["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Grade"


def test_image_data_url_passes_through_and_http_is_refused(sdk: openai.OpenAI, upstream: OpenAIMock) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content = [
        {"type": "text", "text": "what is it"},
        {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
    ]
    sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": content}])  # type: ignore[misc, list-item]
    sent = upstream.calls(CHAT)[0].json["messages"][0]["content"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    for bad, needle in (
        ("https://example.com/cat.png", "not fetched"),
        ("data:image/png;base64," + base64.b64encode(b"GIF89a....").decode(), "not image/png"),
        ("data:image/png;base64,@@@", "not valid base64"),
    ):
        with pytest.raises(openai.BadRequestError) as info:
            sdk.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": bad}}]}],  # type: ignore[misc, list-item]
            )
        assert needle in info.value.message
        assert info.value.body["param"] == "messages.0.content.0.image_url"  # type: ignore[index]
    assert len(upstream.calls(CHAT)) == 1  # nothing bad reached the upstream


def test_logprobs_and_sampling_pass_through(sdk: openai.OpenAI, upstream: OpenAIMock) -> None:
    out = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "hi"}],
        logprobs=True,
        top_logprobs=2,
        top_p=0.5,
        seed=7,
        presence_penalty=0.1,
        frequency_penalty=0.2,
        logit_bias={"50256": -100},
        user="student-1",
    )
    lp = out.choices[0].logprobs
    assert lp is not None and lp.content is not None and lp.content[0].token == "echo:"
    assert len(lp.content[0].top_logprobs) == 2
    sent = upstream.calls(CHAT)[0].json
    assert {k: sent[k] for k in ("top_p", "seed", "presence_penalty", "frequency_penalty", "user")} == {
        "top_p": 0.5,
        "seed": 7,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "user": "student-1",
    }
    assert sent["logit_bias"] == {"50256": -100} and sent["top_logprobs"] == 2


def test_sampling_field_a_provider_cannot_honour_is_400_naming_it(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="local", messages=[{"role": "user", "content": "hi"}], logit_bias={"1": 1}
        )
    assert info.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_models_by_id(sdk: openai.OpenAI) -> None:
    assert sdk.models.retrieve("gpt-4o").id == "gpt-4o"
    assert sdk.models.retrieve("bedrock.us.amazon.nova-pro-v1:0").owned_by == "bedrock"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")
