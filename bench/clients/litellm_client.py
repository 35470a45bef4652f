"""litellm as a client, unchanged, against the service (``openai/<model>`` with ``api_base``: litellm's
way to reach any OpenAI-compatible server): completion plain and streamed, a tool round trip plain and
streamed, ``response_format`` from a pydantic model, embeddings, ``litellm.responses`` plain, streamed
and with a tool round trip, an image part and logprobs."""

from __future__ import annotations

import os

# litellm fetches its price list from GitHub at import unless told to use the copy it ships
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import json
from importlib.metadata import version
from typing import Any

import litellm
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

TOOL: Any = WEATHER_TOOL
FLAT_TOOL: Any = {"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMS}
ASK: Any = WEATHER_MESSAGES
FORCE: Any = FORCE_WEATHER
SERVICE: Any = {"api_base": BASE_URL, "api_key": KEY, "num_retries": 0, "timeout": 180}


class Person(BaseModel):
    name: str
    age: int


def complete(m: dict[str, Any], **kw: Any) -> Any:
    return litellm.completion(model="openai/" + m["chat"], **SERVICE, **kw)


def chat(provider: str, m: dict[str, Any]) -> None:
    out = complete(m, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16)
    assert out.choices[0].message.content and out.choices[0].finish_reason in ("stop", "length")


def chat_stream(provider: str, m: dict[str, Any]) -> None:
    chunks = list(
        complete(m, messages=[{"role": "user", "content": "Say hello."}], max_tokens=16, stream=True)
    )
    whole = litellm.stream_chunk_builder(chunks)
    assert whole is not None and whole.choices[0].message.content, "no streamed text"  # type: ignore[union-attr]


def round_trip(provider: str, m: dict[str, Any], message: Any, streaming: bool) -> None:
    call = message.tool_calls[0]
    check_tool_args(call.function.name, call.function.arguments)
    history = [*ASK, message.model_dump(exclude_none=True)]
    history.append({"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT})
    if streaming:
        chunks = list(complete(m, messages=history, tools=[TOOL], max_tokens=40, stream=True))
        text = litellm.stream_chunk_builder(chunks).choices[0].message.content  # type: ignore[union-attr]
    else:
        text = complete(m, messages=history, tools=[TOOL], max_tokens=40).choices[0].message.content
    check_tool_answer(provider, text)


def tools(provider: str, m: dict[str, Any]) -> None:
    out = complete(m, messages=ASK, tools=[TOOL], tool_choice=FORCE)
    assert out.choices[0].finish_reason == "tool_calls", out.choices[0].finish_reason
    round_trip(provider, m, out.choices[0].message, streaming=False)


def tools_stream(provider: str, m: dict[str, Any]) -> None:
    chunks = list(complete(m, messages=ASK, tools=[TOOL], tool_choice=FORCE, stream=True))
    whole = litellm.stream_chunk_builder(chunks)
    assert whole is not None and whole.choices[0].finish_reason == "tool_calls"  # type: ignore[union-attr]
    round_trip(provider, m, whole.choices[0].message, streaming=True)  # type: ignore[union-attr]


def structured(provider: str, m: dict[str, Any]) -> None:
    out = complete(m, messages=[{"role": "user", "content": "Invent a person."}], response_format=Person)
    check_person(out.choices[0].message.content)


def embeddings(provider: str, m: dict[str, Any]) -> None:
    out = litellm.embedding(model="openai/" + m["embed"], input=["hello world", "goodbye"], **SERVICE)
    assert len(out.data) == 2
    for item in out.data:
        check_vector(item["embedding"])


def respond(m: dict[str, Any], **kw: Any) -> Any:
    return litellm.responses(model="openai/" + m["chat"], **SERVICE, **kw)


def responses(provider: str, m: dict[str, Any]) -> None:
    out = respond(m, input="Say hello.", instructions="Be brief.", max_output_tokens=16)
    text = "".join(c.text for i in out.output if i.type == "message" for c in i.content)
    assert text, f"no text in {out.output!r}"


def responses_stream(provider: str, m: dict[str, Any]) -> None:
    events = list(respond(m, input="Say hello.", max_output_tokens=16, stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and events[-1].type in ("response.completed", "response.incomplete"), events[-1].type


def responses_tools(provider: str, m: dict[str, Any]) -> None:
    first = respond(m, input=ASK, tools=[FLAT_TOOL], tool_choice={"type": "function", "name": "get_weather"})
    calls = [i for i in first.output if i.type == "function_call"]
    assert calls, f"no function_call in {[i.type for i in first.output]}"
    check_tool_args(calls[0].name, calls[0].arguments)
    follow = [*ASK, *[i.model_dump(exclude_none=True) for i in first.output]]
    follow.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": WEATHER_RESULT})
    out = respond(m, input=follow, tools=[FLAT_TOOL], max_output_tokens=40)
    check_tool_answer(provider, "".join(c.text for i in out.output if i.type == "message" for c in i.content))


def image(provider: str, m: dict[str, Any]) -> None:
    content: Any = [
        {"type": "text", "text": "What colour is this pixel?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]
    out = complete(m, messages=[{"role": "user", "content": content}], max_tokens=16)
    assert out.choices[0].message.content


def logprobs(provider: str, m: dict[str, Any]) -> None:
    out = complete(m, messages=[{"role": "user", "content": "Say hi."}], logprobs=True, top_logprobs=2)
    lp = out.choices[0].logprobs
    content = lp["content"] if isinstance(lp, dict) else lp.content  # type: ignore[union-attr]
    assert content and len(json.loads(json.dumps(content, default=dict))[0]["top_logprobs"]) == 2


def main() -> None:
    Matrix("litellm", version("litellm")).run_all(globals())


if __name__ == "__main__":
    main()
