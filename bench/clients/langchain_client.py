"""langchain-openai, unchanged, against the service: ``ChatOpenAI`` invoke and stream, ``bind_tools``
with a ``ToolMessage`` round trip (plain and streamed chunks added up), ``with_structured_output``
(its default json_schema method), ``OpenAIEmbeddings`` (which sends token arrays counted with
tiktoken), the Responses API (``use_responses_api=True``), an image part and ``logprobs``."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from _common import (
    BASE_URL,
    KEY,
    PNG_URL,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    WEATHER_TOOL,
    Matrix,
    check_person,
    check_tool_answer,
    check_tool_args,
    check_vector,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel

TOOL: Any = WEATHER_TOOL
ASK = WEATHER_QUESTION


class Person(BaseModel):
    name: str
    age: int


def model(m: dict[str, Any], **kw: Any) -> ChatOpenAI:
    return ChatOpenAI(model=m["chat"], base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=180, **kw)  # type: ignore[arg-type]


def chat(provider: str, m: dict[str, Any]) -> None:
    out = model(m, max_tokens=16).invoke("Say hello.")
    assert out.content and out.response_metadata.get("finish_reason") in ("stop", "length")


def chat_stream(provider: str, m: dict[str, Any]) -> None:
    chunks = list(model(m, max_tokens=16, stream_usage=True).stream("Say hello."))
    text = "".join(str(c.content) for c in chunks)
    assert text and any(c.usage_metadata for c in chunks), f"text {text!r}"


def _answered(first: AIMessage) -> list[BaseMessage]:
    """The question, the model's tool call (checked) and the tool's result: the next turn's history."""
    assert first.tool_calls, f"no tool calls: {first!r}"
    call = first.tool_calls[0]
    check_tool_args(call["name"], call["args"])
    return [HumanMessage(ASK), first, ToolMessage(WEATHER_RESULT, tool_call_id=call["id"])]


def round_trip(provider: str, m: dict[str, Any], first: AIMessage, streaming: bool) -> None:
    history = _answered(first)
    llm = model(m, max_tokens=40).bind_tools([TOOL])
    if streaming:
        text = "".join(str(c.content) for c in llm.stream(history))
    else:
        text = str(llm.invoke(history).content)
    check_tool_answer(provider, text)


def tools(provider: str, m: dict[str, Any]) -> None:
    first = model(m).bind_tools([TOOL], tool_choice="get_weather").invoke(ASK)
    round_trip(provider, m, first, streaming=False)


def tools_stream(provider: str, m: dict[str, Any]) -> None:
    gathered: Any = None
    for chunk in model(m).bind_tools([TOOL], tool_choice="get_weather").stream(ASK):
        gathered = chunk if gathered is None else gathered + chunk
    round_trip(
        provider, m, AIMessage(content=gathered.content, tool_calls=gathered.tool_calls), streaming=True
    )


def structured(provider: str, m: dict[str, Any]) -> None:
    check_person(model(m).with_structured_output(Person).invoke("Invent a person."))


def embeddings(provider: str, m: dict[str, Any]) -> None:
    emb = OpenAIEmbeddings(model=m["embed"], base_url=BASE_URL, api_key=KEY, max_retries=0)  # type: ignore[arg-type]
    vectors = emb.embed_documents(["hello world", "goodbye"])
    assert len(vectors) == 2
    for v in vectors:
        check_vector(v)
    check_vector(emb.embed_query("hello"))


def responses(provider: str, m: dict[str, Any]) -> None:
    out = model(m, use_responses_api=True, max_tokens=16).invoke("Say hello.")
    assert out.text, f"no text: {out!r}"


def responses_stream(provider: str, m: dict[str, Any]) -> None:
    chunks = list(model(m, use_responses_api=True, max_tokens=16).stream("Say hello."))
    text = "".join(c.text for c in chunks)
    assert text, "no streamed text"


def responses_tools(provider: str, m: dict[str, Any]) -> None:
    llm = model(m, use_responses_api=True, max_tokens=60)
    first = llm.bind_tools([TOOL], tool_choice="get_weather").invoke(ASK)
    check_tool_answer(provider, llm.bind_tools([TOOL]).invoke(_answered(first)).text)


def responses_parse(provider: str, m: dict[str, Any]) -> None:
    check_person(model(m, use_responses_api=True).with_structured_output(Person).invoke("Invent a person."))


def image(provider: str, m: dict[str, Any]) -> None:
    content: Any = [
        {"type": "text", "text": "What colour is this pixel?"},
        {"type": "image_url", "image_url": {"url": PNG_URL}},
    ]
    assert model(m, max_tokens=16).invoke([HumanMessage(content=content)]).content


def logprobs(provider: str, m: dict[str, Any]) -> None:
    out = model(m, logprobs=True, top_logprobs=2).invoke("Say hi.")
    lp = out.response_metadata.get("logprobs") or {}
    assert lp.get("content") and len(lp["content"][0]["top_logprobs"]) == 2, f"logprobs {lp!r}"


def main() -> None:
    Matrix("langchain-openai", version("langchain-openai")).run_all(globals())


if __name__ == "__main__":
    main()
