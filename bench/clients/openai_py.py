"""The official openai Python SDK, unchanged, against the service: chat (plain, streamed), a tool call
and its result (plain, streamed), structured output parsed into a pydantic model (chat and Responses),
embeddings (the SDK asks for base64 by default), ``responses.create`` plain and streamed with a tool
round trip, an image as a ``data:`` URL, and logprobs. Run by ``bench/client_compat.py`` in a venv that
holds only the SDK at the version under test."""

from __future__ import annotations

from typing import Any

import openai
from _common import (
    BASE_URL,
    FORCE_WEATHER,
    KEY,
    PNG_URL,
    WEATHER_MESSAGES,
    WEATHER_PARAMS,
    WEATHER_RESULT,
    WEATHER_TOOL,
    Matrix,
    check_person,
    check_tool_answer,
    check_tool_args,
    check_vector,
)
from pydantic import BaseModel

client = openai.OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=180)
TOOL: Any = WEATHER_TOOL
FLAT_TOOL: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMS, "strict": True}
ASK: Any = WEATHER_MESSAGES
FORCE: Any = FORCE_WEATHER


class Person(BaseModel):
    name: str
    age: int


def chat(provider: str, m: dict[str, Any]) -> None:
    out = client.chat.completions.create(
        model=m["chat"], messages=[{"role": "user", "content": "Say hello."}], max_tokens=16
    )
    assert out.choices[0].message.content, "no content"
    assert out.choices[0].finish_reason in ("stop", "length") and out.usage is not None


def chat_stream(provider: str, m: dict[str, Any]) -> None:
    stream = client.chat.completions.create(
        model=m["chat"],
        messages=[{"role": "user", "content": "Say hello."}],
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text and finishes in (["stop"], ["length"]), f"text {text!r} finishes {finishes}"
    assert chunks[-1].usage is not None, "no usage chunk"


def tools(provider: str, m: dict[str, Any]) -> None:
    first = client.chat.completions.create(model=m["chat"], messages=ASK, tools=[TOOL], tool_choice=FORCE)
    choice = first.choices[0]
    calls = choice.message.tool_calls or []
    assert choice.finish_reason == "tool_calls" and calls, f"finish {choice.finish_reason}"
    call = calls[0]
    check_tool_args(call.function.name, call.function.arguments)  # type: ignore[union-attr]
    history = [*ASK, choice.message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT})
    second = client.chat.completions.create(model=m["chat"], messages=history, tools=[TOOL], max_tokens=40)
    check_tool_answer(provider, second.choices[0].message.content)


def tools_stream(provider: str, m: dict[str, Any]) -> None:
    stream = client.chat.completions.create(
        model=m["chat"], messages=ASK, tools=[TOOL], tool_choice=FORCE, stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        if not chunk.choices:
            continue
        finish = chunk.choices[0].finish_reason or finish
        for d in chunk.choices[0].delta.tool_calls or []:
            call = calls.setdefault(d.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += d.id or ""
            if d.function:
                call["name"] += d.function.name or ""
                call["arguments"] += d.function.arguments or ""
    assert finish == "tool_calls" and calls, f"finish {finish}, calls {calls}"
    call = calls[min(calls)]
    check_tool_args(call["name"], call["arguments"])
    assistant = {
        "role": "assistant",
        "tool_calls": [
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": call["name"], "arguments": call["arguments"]},
            }
        ],
    }
    history = [*ASK, assistant, {"role": "tool", "tool_call_id": call["id"], "content": WEATHER_RESULT}]
    text = ""
    with client.chat.completions.stream(model=m["chat"], messages=history, tools=[TOOL], max_tokens=40) as s:
        for event in s:
            if event.type == "content.delta":
                text += event.delta
    check_tool_answer(provider, text)


def structured(provider: str, m: dict[str, Any]) -> None:
    out = client.chat.completions.parse(
        model=m["chat"], messages=[{"role": "user", "content": "Invent a person."}], response_format=Person
    )
    check_person(out.choices[0].message.parsed)


def embeddings(provider: str, m: dict[str, Any]) -> None:
    out = client.embeddings.create(model=m["embed"], input=["hello world", "goodbye"])
    assert len(out.data) == 2
    for item in out.data:
        check_vector(item.embedding)


def responses(provider: str, m: dict[str, Any]) -> None:
    out = client.responses.create(
        model=m["chat"], input="Say hello.", instructions="Be brief.", max_output_tokens=16
    )
    assert out.output_text and out.usage is not None


def responses_stream(provider: str, m: dict[str, Any]) -> None:
    with client.responses.create(model=m["chat"], input="Say hello.", max_output_tokens=16, stream=True) as s:
        events = list(s)
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[0].type == "response.created" and events[-1].type in (
        "response.completed",
        "response.incomplete",
    )
    assert text and text == events[-1].response.output_text  # type: ignore[union-attr]


def responses_tools(provider: str, m: dict[str, Any]) -> None:
    forced: Any = {"type": "function", "name": "get_weather"}
    ask: Any = [{"role": "user", "content": "What is the weather in Oslo?"}]
    first = client.responses.create(model=m["chat"], input=ask, tools=[FLAT_TOOL], tool_choice=forced)
    calls = [i for i in first.output if i.type == "function_call"]
    assert calls, f"no function_call in {[i.type for i in first.output]}"
    check_tool_args(calls[0].name, calls[0].arguments)
    follow: Any = [*ask, *[i.model_dump(exclude_none=True) for i in first.output]]
    follow.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": WEATHER_RESULT})
    with client.responses.stream(model=m["chat"], input=follow, tools=[FLAT_TOOL], max_output_tokens=40) as s:
        # not get_final_response(): it wants response.completed, and a local answer cut by
        # max_output_tokens ends with response.incomplete (as OpenAI's does)
        last = list(s)[-1]
    assert last.type in ("response.completed", "response.incomplete"), last.type
    check_tool_answer(provider, last.response.output_text)  # type: ignore[union-attr]


def responses_parse(provider: str, m: dict[str, Any]) -> None:
    out = client.responses.parse(model=m["chat"], input="Invent a person.", text_format=Person)
    check_person(out.output_parsed)


def image(provider: str, m: dict[str, Any]) -> None:
    content: Any = [
        {"type": "text", "text": "What colour is this pixel?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]
    out = client.chat.completions.create(
        model=m["chat"], messages=[{"role": "user", "content": content}], max_tokens=16
    )
    assert out.choices[0].message.content


def logprobs(provider: str, m: dict[str, Any]) -> None:
    out = client.chat.completions.create(
        model=m["chat"], messages=[{"role": "user", "content": "Say hi."}], logprobs=True, top_logprobs=2
    )
    lp = out.choices[0].logprobs
    assert lp is not None and lp.content, "no logprobs"
    assert len(lp.content[0].top_logprobs) == 2


def models(provider: str, m: dict[str, Any]) -> None:
    listed = [model.id for model in client.models.list()]
    assert listed, "no models listed"
    one = client.models.retrieve(m["chat"])
    assert one.id == m["chat"] and one.object == "model", one


def main() -> None:
    Matrix("openai-python", openai.__version__).run_all(globals())


if __name__ == "__main__":
    main()
