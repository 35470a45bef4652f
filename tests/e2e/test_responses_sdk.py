"""The official openai SDK's Responses API (``client.responses``), unchanged, against the service
(gunicorn on a loopback port) in front of the loopback OpenAI and Bedrock stand-ins: plain answers,
instructions, function tools with a ``function_call_output`` round trip, ``text.format`` JSON schema,
``responses.parse`` into a pydantic model, the typed event stream, an in-band stream error, and the
400s that name the field. Every answer is read by the SDK's own pydantic models (``Response``,
the ``ResponseStreamEvent`` union), so a field of the wrong shape fails here."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage
from pydantic import BaseModel

from tests.support.bedrock_mock import CONVERSE, CONVERSE_STREAM, BedrockMock
from tests.support.cloud_service import cloud_service, sdk_client
from tests.support.openai_mock import CHAT, OpenAIMock, Reply
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "responses-key"
GPT = "gpt-4o"
CLAUDE = "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0"
SONNET = "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"  # reads images
WEATHER: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": False,
}
TIME: Any = {
    "type": "function",
    "name": "get_time",
    "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}},
    "strict": False,
}
GRADE_SCHEMA = {
    "type": "object",
    "properties": {"score": {"type": "integer"}, "reason": {"type": "string"}},
    "required": ["score", "reason"],
    "additionalProperties": False,
}


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


class Grade(BaseModel):
    score: int
    reason: str


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[OpenAIMock, BedrockMock]]:
    with OpenAIMock() as oai, BedrockMock() as bedrock:
        yield oai, bedrock


@pytest.fixture(scope="module")
def service(mocks: tuple[OpenAIMock, BedrockMock]) -> Iterator[Service]:
    with cloud_service(KEY, *mocks, "responses-e2e") as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, mocks: tuple[OpenAIMock, BedrockMock]) -> Iterator[openai.OpenAI]:
    with sdk_client(service, KEY, mocks) as client:
        yield client


def _upstream_turns(mocks: tuple[OpenAIMock, BedrockMock], model: str) -> list[Any]:
    """The conversation the provider received (OpenAI chat messages or Converse messages)."""
    oai, bedrock = mocks
    if model == GPT:
        return list(oai.calls(CHAT)[-1].json["messages"])
    call = (bedrock.calls(CONVERSE) or bedrock.calls(CONVERSE_STREAM))[-1].json
    return [{"system": call.get("system")}, *call["messages"]]


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_plain_text_with_instructions(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], model: str
) -> None:
    out = sdk.responses.create(
        model=model, input="hello there", instructions="Answer briefly.", metadata={"k": "v"}
    )
    assert isinstance(out, Response)
    assert out.id.startswith("resp_") and out.object == "response" and out.status == "completed"
    assert out.output_text == "echo: hello there"
    message = out.output[0]
    assert isinstance(message, ResponseOutputMessage) and message.id.startswith("msg_")
    assert (
        out.usage is not None
        and out.usage.total_tokens == out.usage.input_tokens + out.usage.output_tokens > 0
    )
    assert out.instructions == "Answer briefly." and out.metadata == {"k": "v"} and out.store is False
    turns = _upstream_turns(mocks, model)
    if model == GPT:
        assert turns == [
            {"role": "system", "content": "Answer briefly."},
            {"role": "user", "content": "hello there"},
        ]
    else:
        assert turns[0] == {"system": [{"text": "Answer briefly."}]}
        assert turns[1] == {"role": "user", "content": [{"text": "hello there"}]}


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_function_call_then_function_call_output_round_trip(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], model: str
) -> None:
    history: list[Any] = [{"role": "user", "content": "weather and time in Oslo?"}]
    first = sdk.responses.create(model=model, input=history, tools=[WEATHER, TIME])
    calls = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert all(c.id and c.id.startswith("fc_") and c.call_id for c in calls)
    assert set(json.loads(calls[0].arguments)) == {"city"}
    # As the SDK docs do it: the output items go back as history, then one output per call.
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history += [
        {"type": "function_call_output", "call_id": c.call_id, "output": f"result of {c.name}"} for c in calls
    ]
    second = sdk.responses.create(model=model, input=history, tools=[WEATHER, TIME])
    assert second.output_text == "tool said: result of get_weather; result of get_time"
    turns = _upstream_turns(mocks, model)
    if model == GPT:
        assert [tc["id"] for tc in turns[1]["tool_calls"]] == [c.call_id for c in calls]
        assert turns[2] == {
            "role": "tool",
            "tool_call_id": calls[0].call_id,
            "content": "result of get_weather",
        }
    else:
        uses = [b["toolUse"] for b in turns[2]["content"] if "toolUse" in b]
        assert [u["toolUseId"] for u in uses] == [c.call_id for c in calls]
        results = [b["toolResult"] for b in turns[3]["content"]]
        assert [r["toolUseId"] for r in results] == [c.call_id for c in calls]


def test_tool_choice_and_parallel_flag_reach_openai(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock]
) -> None:
    out = sdk.responses.create(
        model=GPT,
        input="time?",
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "name": "get_time"},
        parallel_tool_calls=False,
        temperature=0.3,
        top_p=0.5,
        max_output_tokens=50,
        user="student-1",
    )
    assert [item.name for item in out.output if isinstance(item, ResponseFunctionToolCall)] == ["get_time"]
    sent = mocks[0].calls(CHAT)[-1].json
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert sent["parallel_tool_calls"] is False
    assert sent["tools"][0] == {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": WEATHER["parameters"],
            "strict": False,
        },
    }
    assert {k: sent[k] for k in ("temperature", "top_p", "user")} == {
        "temperature": 0.3,
        "top_p": 0.5,
        "user": "student-1",
    }
    assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 50
    assert out.tool_choice.type == "function" and out.parallel_tool_calls is False  # type: ignore[union-attr]


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_text_format_json_schema(sdk: openai.OpenAI, model: str) -> None:
    out = sdk.responses.create(
        model=model,
        input="grade it",
        text={"format": {"type": "json_schema", "name": "Grade", "schema": GRADE_SCHEMA, "strict": True}},
    )
    value = json.loads(out.output_text)
    assert set(value) == {"score", "reason"} and isinstance(value["score"], int)
    assert out.text is not None and out.text.format is not None and out.text.format.type == "json_schema"


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_parse_into_a_pydantic_model(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], model: str
) -> None:
    out = sdk.responses.parse(model=model, input="grade it", text_format=Grade)
    assert isinstance(out.output_parsed, Grade)
    if model == GPT:
        fmt = mocks[0].calls(CHAT)[-1].json["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["name"] == "Grade"


def _stream(sdk: openai.OpenAI, **kwargs: Any) -> list[Any]:
    with sdk.responses.create(stream=True, **kwargs) as stream:
        return list(stream)


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_stream_of_text_is_openais_event_sequence(sdk: openai.OpenAI, model: str) -> None:
    events = _stream(sdk, model=model, input="stream me please")
    kinds = [e.type for e in events]
    assert kinds[:5] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
    ]
    assert kinds[-5:] == [
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "echo: stream me please"
    assert len([k for k in kinds if k == "response.output_text.delta"]) > 1  # streamed, not one blob
    done = events[-1].response
    assert done.status == "completed" and done.output_text == text and done.id == events[0].response.id
    assert done.usage is not None and done.usage.output_tokens > 0
    item_ids = {getattr(e, "item_id", None) for e in events} - {None}
    assert item_ids == {done.output[0].id}


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_stream_of_function_calls(sdk: openai.OpenAI, model: str) -> None:
    events = _stream(sdk, model=model, input="weather?", tools=[WEATHER, TIME])
    added = [e.item for e in events if e.type == "response.output_item.added"]
    calls = [i for i in added if i.type == "function_call"]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    for c in calls:
        pieces = [
            e.delta
            for e in events
            if e.type == "response.function_call_arguments.delta" and e.item_id == c.id
        ]
        done = [e for e in events if e.type == "response.function_call_arguments.done" and e.item_id == c.id]
        assert len(done) == 1 and done[0].arguments == "".join(pieces)
        json.loads(done[0].arguments)
    final = events[-1]
    assert final.type == "response.completed"
    out_calls = [i for i in final.response.output if i.type == "function_call"]
    assert [(c.call_id, c.name) for c in out_calls] == [(c.call_id, c.name) for c in calls]
    indices = [e.output_index for e in events if e.type == "response.output_item.done"]
    assert indices == sorted(indices) and len(indices) == len(final.response.output)


def test_stream_cut_by_max_output_tokens_is_incomplete(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock]
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": GPT}
    mocks[0].script(
        CHAT,
        Reply(
            sse=[
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "cut he"}}]},
                {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]},
                "[DONE]",
            ]
        ),
    )
    events = _stream(sdk, model=GPT, input="a long story", max_output_tokens=2)
    final = events[-1]
    assert final.type == "response.incomplete"
    assert (
        final.response.status == "incomplete"
        and final.response.incomplete_details.reason == "max_output_tokens"
    )
    assert final.response.output[0].status == "incomplete" and final.response.output_text == "cut he"


def test_error_after_the_stream_began_is_an_in_band_error_event(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], service: Service
) -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": GPT}
    mocks[0].script(
        CHAT,
        Reply(
            sse=[
                {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
                "{garbage",
            ]
        ),
    )
    seen: list[str] = []
    with (
        pytest.raises(openai.APIError) as info,
        sdk.responses.create(model=GPT, input="hi", stream=True) as stream,
    ):
        for event in stream:  # the events before the error are checked too
            seen.append(event.type)
    assert seen[:2] == ["response.created", "response.in_progress"]
    assert "response.completed" not in seen
    assert info.value.body["code"] == "invalid_upstream_response"  # type: ignore[index]
    assert info.value.body["type"] == "invalid_upstream_response"  # type: ignore[index]
    line = [ln for ln in service.logs().splitlines() if '"route": "/v1/responses"' in ln][-1]
    assert '"error_kind": "invalid_upstream_response"' in line, line


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id", "stateless"),
        ({"conversation": "conv_1"}, "conversation", "stateless"),
        ({"tools": [{"type": "web_search"}]}, "tools.0.type", "only function tools"),
        ({"reasoning": {"effort": "low"}}, "reasoning", "not supported"),
        ({"include": ["message.output_text.logprobs"]}, "include", "not supported"),
        ({"truncation": "auto"}, "truncation", "disabled"),
        ({"no_such_field": 1}, "no_such_field", "Extra inputs"),
        ({"input": [{"type": "reasoning", "summary": []}]}, "input.0", "item type must be"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "https://x.test/a.png"}],
                    }
                ]
            },
            "input.0.content.0.image_url",
            "not fetched",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "nope", "output": "x"}]},
            "input.0.call_id",
            "no earlier function_call",
        ),
        (
            {"text": {"format": {"type": "json_schema", "name": "g", "schema": {"type": "array"}}}},
            "text.format.schema",
            "object",
        ),
        ({"tool_choice": "required"}, "tool_choice", "needs tools"),
        ({"model": "local", "input": "hi", "user": "u"}, "user", "not supported"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], body: dict[str, Any], param: str, needle: str
) -> None:
    request = {"model": GPT, "input": "hi", **body}
    with pytest.raises(openai.BadRequestError) as info:
        sdk.post("/responses", cast_to=object, body=request)
    assert info.value.body["param"] == param, info.value.body  # type: ignore[index]
    assert needle in info.value.message
    assert not mocks[0].calls(CHAT) and not mocks[1].calls()  # refused before any upstream call


@pytest.mark.parametrize("model", [GPT, CLAUDE])
def test_the_sdks_stream_helper_accumulates_the_events(sdk: openai.OpenAI, model: str) -> None:
    """``responses.stream`` rebuilds the response from the events (snapshots, deltas, parsed output)."""
    with sdk.responses.stream(model=model, input="grade it", text_format=Grade) as stream:
        texts = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert final.output_parsed is not None and isinstance(final.output_parsed, Grade)
    assert "".join(texts) == final.output_text
    with sdk.responses.stream(model=model, input="weather?", tools=[WEATHER]) as stream:
        done = [e for e in stream if e.type == "response.function_call_arguments.done"]
        calls = [i for i in stream.get_final_response().output if i.type == "function_call"]
    assert [c.arguments for c in calls] == [d.arguments for d in done] and calls[0].name == "get_weather"


@pytest.mark.parametrize("model", [GPT, SONNET])
def test_input_image_reaches_the_provider(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock], model: str
) -> None:
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    content: Any = [
        {"type": "input_text", "text": "what is it"},
        {"type": "input_image", "image_url": url, "detail": "low"},
    ]
    sdk.responses.create(model=model, input=[{"role": "user", "content": content}])
    turn = _upstream_turns(mocks, model)[-1]
    if model == GPT:
        assert turn["content"][1] == {"type": "image_url", "image_url": {"url": url, "detail": "low"}}
    else:
        block = turn["content"][1]["image"]
        assert block["format"] == "png" and base64.b64decode(block["source"]["bytes"]) == PNG


def test_a_feature_bedrock_lacks_is_400_before_any_call(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock]
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        sdk.responses.create(
            model="bedrock.us.meta.llama3-3-70b-instruct-v1:0",
            input="hi",
            tools=[WEATHER],
            tool_choice="required",
        )
    assert info.value.body["param"] == "tool_choice"  # type: ignore[index]
    assert not mocks[1].calls()


def test_a_conversation_moves_from_bedrock_to_openai(
    sdk: openai.OpenAI, mocks: tuple[OpenAIMock, BedrockMock]
) -> None:
    """Stateless means portable: Claude's function calls, answered, are continued by gpt-4o."""
    history: list[Any] = [{"role": "user", "content": "weather in Oslo?"}]
    first = sdk.responses.create(model=CLAUDE, input=history, tools=[WEATHER])
    (call,) = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "sunny"})
    second = sdk.responses.create(model=GPT, input=history, tools=[WEATHER])
    assert second.output_text == "tool said: sunny"
    sent = mocks[0].calls(CHAT)[-1].json["messages"]
    assert sent[1]["content"] == "Let me look that up."
    assert sent[1]["tool_calls"][0]["id"] == call.call_id == sent[2]["tool_call_id"]
    assert json.loads(sent[1]["tool_calls"][0]["function"]["arguments"]) == json.loads(call.arguments)
