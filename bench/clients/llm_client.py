"""simonw's ``llm``, unchanged, against the service through its documented way to reach an
OpenAI-compatible server: ``extra-openai-models.yaml`` entries with ``api_base`` (one chat-completions
model and one ``responses: true`` model per provider). Prompts plain and streamed, a tool chain (llm runs
the function and sends its result back), a schema, an image attachment, logprobs, and OpenAI's embedding
model (``OPENAI_BASE_URL`` points its client at the service; llm has no embedding entry for other names)."""

from __future__ import annotations

import json
from importlib.metadata import version
from typing import Any

import llm
from _common import (
    BASE_URL,
    KEY,
    PNG,
    PROVIDERS,
    WEATHER_QUESTION,
    WEATHER_RESULT,
    Matrix,
    NotApplicable,
    check_person,
    check_tool_answer,
    check_tool_args,
    check_vector,
)
from pydantic import BaseModel

ASK = WEATHER_QUESTION
seen: list[dict[str, Any]] = []


class Person(BaseModel):
    name: str
    age: int


def get_weather(city: str) -> str:
    """Weather for a city."""
    seen.append({"city": city})
    return WEATHER_RESULT


def configure() -> None:
    entries = []
    for provider, models in PROVIDERS.items():
        for suffix, extra in (("", {}), ("-responses", {"responses": True})):
            entries.append(
                {
                    "model_id": f"aiproxy-{provider}{suffix}",
                    "model_name": models["chat"],
                    "api_base": BASE_URL,
                    "api_key_name": "aiproxy",
                    "supports_tools": True,
                    "supports_schema": True,
                    "vision": True,
                    **extra,
                }
            )
    (llm.user_dir() / "extra-openai-models.yaml").write_text(json.dumps(entries))  # JSON is YAML


def chat_model(provider: str, responses: bool = False) -> Any:
    return llm.get_model(f"aiproxy-{provider}" + ("-responses" if responses else ""))


def chat(provider: str, m: dict[str, Any]) -> None:
    assert chat_model(provider).prompt("Say hello.", key=KEY, max_tokens=16).text()


def chat_stream(provider: str, m: dict[str, Any]) -> None:
    pieces = list(chat_model(provider).prompt("Say hello.", key=KEY, max_tokens=16))
    assert "".join(pieces), "no streamed text"


def run_chain(provider: str, responses: bool, stream: bool) -> None:
    seen.clear()
    chain = chat_model(provider, responses).chain(ASK, tools=[get_weather], key=KEY)
    text = "".join(chain) if stream else chain.text()
    assert seen, f"the tool was not called; answer {text!r}"
    check_tool_args("get_weather", seen[0])
    check_tool_answer(provider, text)


def tools(provider: str, m: dict[str, Any]) -> None:
    run_chain(provider, responses=False, stream=False)


def tools_stream(provider: str, m: dict[str, Any]) -> None:
    run_chain(provider, responses=False, stream=True)


def structured(provider: str, m: dict[str, Any]) -> None:
    check_person(chat_model(provider).prompt("Invent a person.", schema=Person, key=KEY).text())


def embeddings(provider: str, m: dict[str, Any]) -> None:
    if provider != "openai":
        raise NotApplicable("llm's OpenAI embedding models have fixed names")
    vectors = list(llm.get_embedding_model("3-small").embed_multi(["hello world", "goodbye"]))
    assert len(vectors) == 2
    for v in vectors:
        check_vector(v)


def responses(provider: str, m: dict[str, Any]) -> None:
    assert chat_model(provider, True).prompt("Say hello.", system="Be brief.", key=KEY, max_tokens=16).text()


def responses_stream(provider: str, m: dict[str, Any]) -> None:
    assert "".join(chat_model(provider, True).prompt("Say hello.", key=KEY, max_tokens=16))


def responses_tools(provider: str, m: dict[str, Any]) -> None:
    run_chain(provider, responses=True, stream=True)


def responses_parse(provider: str, m: dict[str, Any]) -> None:
    check_person(chat_model(provider, True).prompt("Invent a person.", schema=Person, key=KEY).text())


def image(provider: str, m: dict[str, Any]) -> None:
    out = chat_model(provider).prompt(
        "What colour is this pixel?", attachments=[llm.Attachment(content=PNG)], key=KEY
    )
    assert out.text()


def logprobs(provider: str, m: dict[str, Any]) -> None:
    raise NotApplicable("llm's chat models have no logprobs option (only its legacy completion models)")


def main() -> None:
    configure()
    Matrix("llm", version("llm")).run_all(globals())


if __name__ == "__main__":
    main()
