"""``POST /v1/responses`` in process: how ``input`` items, tools and ``text.format`` become the provider's
``ChatRequest``, how results and delta streams become the ``response`` object and its events (each
checked against the openai SDK's own pydantic models), the statuses of cut-off answers, in-band
stream errors, and the 400s naming the field as the body spells it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from lib.errors import InvalidUpstreamResponseError
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    ImagePart,
    Message,
    ModelInfo,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.gateway import DEFAULT_FACTORIES, Gateway
from tests.conftest import API_KEY, make_settings

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(24))
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
AUTH = {"Authorization": API_KEY}


class Scripted:
    """A provider answering what the test scripts, recording each request."""

    name = "openai"

    def __init__(self) -> None:
        self.requests: list[ChatRequest] = []
        self.result = ChatResult("gpt-test", "openai", [Choice(0, "scripted", "stop")], Usage(4, 2))
        self.deltas: list[ChatDelta | Exception] = []

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        self.requests.append(request)
        return self.result

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        self.requests.append(request)
        for d in self.deltas:
            if isinstance(d, Exception):
                raise d
            yield d

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        raise NotImplementedError

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        return []


@pytest.fixture
def provider() -> Scripted:
    return Scripted()


@pytest.fixture
def post(provider: Scripted, app_factory: Callable[..., Any]) -> Callable[..., Any]:
    settings = make_settings(openai_api_key="sk-responses")
    app = app_factory(
        settings, Gateway(settings, factories={**DEFAULT_FACTORIES, "openai": lambda _s: provider})
    )
    client: FlaskClient = app.test_client()

    def call(**body: Any) -> Any:
        return client.post("/v1/responses", json={"model": "gpt-4o", **body}, headers=AUTH)

    return call


def events_of(resp: Any) -> list[Any]:
    """The SSE body as the SDK's typed events (``event:`` line and ``data`` type must agree)."""
    out = []
    for frame in resp.get_data(as_text=True).strip().split("\n\n"):
        event_line, data_line = frame.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        out.append(EVENTS.validate_python(data) if data["type"] != "error" else data)
    return out


def test_plain_answer_is_a_response_object(post: Callable[..., Any], provider: Scripted) -> None:
    r = post(input="hi", instructions="Be brief.", temperature=0.2, top_p=0.9, user="u1", store=True)
    assert r.status_code == 200
    out = Response.model_validate(r.json)
    assert out.output_text == "scripted" and out.model == "gpt-test" and out.status == "completed"
    assert out.usage is not None and (out.usage.input_tokens, out.usage.output_tokens) == (4, 2)
    assert r.json["store"] is False  # accepted, never stored
    req = provider.requests[0]
    assert [(m.role, m.content) for m in req.messages] == [("system", "Be brief."), ("user", "hi")]
    assert (req.temperature, req.sampling.top_p, req.sampling.user, req.n) == (0.2, 0.9, "u1", 1)


def test_input_items_become_turns(post: Callable[..., Any], provider: Scripted) -> None:
    r = post(
        input=[
            {"role": "developer", "content": "rules"},
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look: "},
                    {"type": "input_image", "image_url": PNG_URL, "detail": "low"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Calling.", "annotations": []}],
            },
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "f",
                "arguments": "{}",
                "id": "fc_1",
                "status": "completed",
            },
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "t"}, {"type": "input_text", "text": "wo"}],
            },
            {"type": "function_call", "call_id": "c3", "name": "f", "arguments": "{}"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "no"}]},
        ],
        tools=[
            {"type": "function", "name": "f"},
            {"type": "function", "name": "g", "parameters": {"type": "object"}},
        ],
    )
    assert r.status_code == 200, r.json
    msgs = provider.requests[0].messages
    assert msgs[0] == Message("system", "rules")
    assert msgs[1].role == "user" and msgs[1].parts[0] == TextPart("look: ")
    image = msgs[1].parts[1]
    assert isinstance(image, ImagePart) and image.data == PNG and image.detail == "low"
    assert msgs[2] == Message(
        "assistant", (TextPart("Calling."), ToolCall("c1", "f", "{}"), ToolCall("c2", "g", '{"a":1}'))
    )
    assert msgs[3] == Message("tool", (ToolResult("c1", "one"),))
    assert msgs[4] == Message("tool", (ToolResult("c2", "two"),))
    assert msgs[5] == Message("assistant", (ToolCall("c3", "f", "{}"),))
    assert msgs[6] == Message("assistant", "no")
    tools = provider.requests[0].tools
    assert tools[0].parameters == {"type": "object", "properties": {}} and tools[1].parameters == {
        "type": "object"
    }


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "text"}, None),
        ({"type": "json_object"}, ("json_object", {"type": "object"})),
        (
            {"type": "json_schema", "name": "g", "schema": {"type": "object"}, "description": "d"},
            ("g", {"type": "object"}),
        ),
    ],
)
def test_text_format(
    post: Callable[..., Any], provider: Scripted, fmt: dict[str, Any], expected: Any
) -> None:
    r = post(input="x", text={"format": fmt})
    assert r.status_code == 200
    schema = provider.requests[0].json_schema
    assert (schema.name, schema.schema) == expected if schema else expected is None
    assert Response.model_validate(r.json).text.format.type == fmt["type"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_cut_off_answers_are_incomplete(
    post: Callable[..., Any], provider: Scripted, finish: Any, status: str, reason: str | None
) -> None:
    provider.result = ChatResult("m", "openai", [Choice(0, "partial", finish)], Usage(1, 1))
    out = Response.model_validate(post(input="x", max_output_tokens=1).json)
    assert out.status == status and out.output[0].status == status
    assert (out.incomplete_details.reason if out.incomplete_details else None) == reason


def test_an_answer_of_only_tool_calls_has_no_message_item(
    post: Callable[..., Any], provider: Scripted
) -> None:
    calls = (ToolCall("call_1", "f", '{"x":1}'), ToolCall("call_2", "f", "{}"))
    provider.result = ChatResult("m", "openai", [Choice(0, "", "tool_calls", calls)], Usage(1, 1))
    r = post(input="x", tools=[{"type": "function", "name": "f"}], tool_choice="required")
    out = Response.model_validate(r.json)
    assert [(i.type, getattr(i, "call_id", None)) for i in out.output] == [
        ("function_call", "call_1"),
        ("function_call", "call_2"),
    ]
    assert r.json["tool_choice"] == "required"


def test_stream_text_then_calls_then_completed(post: Callable[..., Any], provider: Scripted) -> None:
    provider.deltas = [
        ChatDelta(text="Let me", model="gpt-live"),
        ChatDelta(index=1, text="ignored: the Responses API has one answer"),
        ChatDelta(text=" look."),
        ChatDelta(tool_calls=(ToolCallDelta(0, "call_a", "f", ""),)),
        ChatDelta(tool_calls=(ToolCallDelta(1, "call_b", "f", '{"q"'),)),
        ChatDelta(tool_calls=(ToolCallDelta(0, None, None, '{"q":'),)),
        ChatDelta(tool_calls=(ToolCallDelta(0, None, None, "1}"),)),
        ChatDelta(tool_calls=(ToolCallDelta(1, None, None, ":2}"),)),
        ChatDelta(finish_reason="tool_calls", usage=Usage(7, 5)),
    ]
    r = post(input="x", tools=[{"type": "function", "name": "f"}], stream=True)
    assert r.status_code == 200 and r.mimetype == "text/event-stream"
    events = events_of(r)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.model == "gpt-live"
    kinds = [e.type for e in events]
    text_done = kinds.index("response.output_item.done")
    assert kinds.index("response.output_text.done") < text_done < kinds.index("response.output_item.added", 3)
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert deltas == ["Let me", " look."]
    final = events[-1].response
    assert events[-1].type == "response.completed"
    assert final.output_text == "Let me look."
    assert [(i.type, getattr(i, "arguments", None)) for i in final.output] == [
        ("message", None),
        ("function_call", '{"q":1}'),
        ("function_call", '{"q":2}'),
    ]
    assert final.usage.input_tokens == 7 and final.usage.total_tokens == 12


def test_stream_of_an_empty_answer_is_one_empty_message(post: Callable[..., Any], provider: Scripted) -> None:
    provider.deltas = [ChatDelta(finish_reason="length", usage=Usage(3, 0))]
    events = events_of(post(input="x", stream=True))
    assert [e.type for e in events][-3:] == [
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    final = events[-1].response
    assert final.output[0].content[0].text == "" and final.incomplete_details.reason == "max_output_tokens"


def test_stream_error_after_the_start_is_an_error_event(post: Callable[..., Any], provider: Scripted) -> None:
    provider.deltas = [ChatDelta(text="Hel"), InvalidUpstreamResponseError("OpenAI sent garbage")]
    events = events_of(post(input="x", stream=True))
    last = events[-1]
    assert last["type"] == "error" and last["sequence_number"] == len(events) - 1
    assert (last["code"], last["message"], last["param"]) == (
        "invalid_upstream_response",
        "OpenAI sent garbage",
        None,
    )
    assert last["error"] == {
        "message": "OpenAI sent garbage",
        "type": "invalid_upstream_response",
        "code": "invalid_upstream_response",
        "param": None,
    }
    assert all(getattr(e, "type", "") != "response.completed" for e in events)


def test_no_op_values_of_unsupported_fields_are_accepted(post: Callable[..., Any]) -> None:
    r = post(
        input="x",
        background=False,
        include=[],
        truncation="disabled",
        service_tier="auto",
        previous_response_id=None,
        reasoning=None,
        text={"format": {"type": "text"}, "verbosity": None},
    )
    assert r.status_code == 200, r.json


@pytest.mark.parametrize(
    ("body", "param", "needle"),
    [
        ({"input": 5}, "input", "a string or a list"),
        ({"input": []}, "input", "must not be empty"),
        ({"input": "x" * 1_000_001}, "input", "at most"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image"}]}]},
            "input.0.content.0.image_url",
            "required",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}]},
            "input.0.content.0.file_id",
            "not stored",
        ),
        (
            {"input": [{"role": "assistant", "content": [{"type": "input_image", "image_url": PNG_URL}]}]},
            "input.0.content.0",
            "only user messages",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL}] * 21}]},
            "input",
            "at most 20 images",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": "a", "extra": 1}]}]},
            "input.0.content.0.extra",
            "Extra inputs",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input.0.content.0",
            "does not match",
        ),
        (
            {
                "input": [
                    {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "image_url": PNG_URL}],
                    },
                ]
            },
            "input.1.output.0",
            "text only",
        ),
        (
            {"tools": [{"type": "function", "name": "f"}, {"type": "function", "name": "f"}]},
            "tools",
            "unique",
        ),
        (
            {"tools": [{"type": "function", "name": "f"}], "tool_choice": {"type": "function", "name": "g"}},
            "tool_choice",
            "not one of tools",
        ),
        ({"tools": [{"type": "function", "name": "f", "strict": "yes"}]}, "tools.0.strict", "boolean"),
        ({"text": {"format": {"type": "text", "extra": 1}}}, "text.format.extra", "Extra inputs"),
        (
            {"text": {"format": {"type": "json_schema", "name": "g", "schema": {}}, "verbosity": "low"}},
            "text.verbosity",
            "not supported",
        ),
        ({"metadata": {"k" * 65: "v"}}, "metadata", "1-64"),
        ({"stream": "yes"}, "stream", "boolean"),
        (
            {
                "model": "local",
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL}]}],
            },
            "input",
            "does not accept images",
        ),
        ({"model": "local", "user": "u", "stream": True}, "user", "not supported"),
    ],
)
def test_bad_input_is_400_naming_the_field(
    post: Callable[..., Any], provider: Scripted, body: dict[str, Any], param: str, needle: str
) -> None:
    r = post(**{"input": "x", **body})
    assert r.status_code == 400, r.json
    assert r.json["error"]["param"] == param, r.json
    assert needle in r.json["error"]["message"]
    assert not provider.requests


def test_route_is_in_the_openapi_document(post: Callable[..., Any], app_factory: Callable[..., Any]) -> None:
    spec = app_factory(make_settings()).test_client().get("/openapi.json").json
    op = spec["paths"]["/v1/responses"]["post"]
    assert op["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponsesBody"
    }
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert spec["components"]["schemas"]["ResponsesBody"]["additionalProperties"] is False
