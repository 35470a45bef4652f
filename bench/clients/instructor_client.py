"""instructor, unchanged, on the openai SDK pointed at the service: a pydantic model extracted in each
mode that speaks chat completions (``TOOLS``: a forced function call; ``JSON_SCHEMA``:
``response_format``; ``JSON``: json_object plus the schema in the prompt), streamed as partial objects,
a list of objects through parallel tool calls, the Responses API (``RESPONSES_TOOLS``) and an image.
instructor makes no embeddings and asks for no logprobs."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import version
from typing import Any

import instructor
import openai
from _common import BASE_URL, KEY, PNG_URL, Matrix, check_person
from pydantic import BaseModel

ASK: Any = [{"role": "user", "content": "Invent a person."}]


class Person(BaseModel):
    name: str
    age: int


def client(mode: instructor.Mode) -> Any:
    sdk = openai.OpenAI(base_url=BASE_URL, api_key=KEY, max_retries=0, timeout=180)
    return instructor.from_openai(sdk, mode=mode)


def _person(mode: Any, m: dict[str, Any]) -> None:
    check_person(client(mode).create(model=m["chat"], response_model=Person, messages=ASK, max_retries=0))


def tools(provider: str, m: dict[str, Any]) -> None:
    _person(instructor.Mode.TOOLS, m)


def json_schema(provider: str, m: dict[str, Any]) -> None:
    _person(instructor.Mode.JSON_SCHEMA, m)


def json_mode(provider: str, m: dict[str, Any]) -> None:
    _person(instructor.Mode.JSON, m)


def partial_stream(provider: str, m: dict[str, Any]) -> None:
    stream = client(instructor.Mode.TOOLS).create_partial(
        model=m["chat"], response_model=Person, messages=ASK, max_retries=0
    )
    snapshots = list(stream)  # each a more complete Person; the last one is whole
    assert len(snapshots) > 1, f"{len(snapshots)} partial objects"
    check_person(snapshots[-1])


def parallel_tools(provider: str, m: dict[str, Any]) -> None:
    people = client(instructor.Mode.PARALLEL_TOOLS).create(
        model=m["chat"], response_model=Iterable[Person], messages=ASK, max_retries=0
    )
    found = list(people)
    assert found, "no objects"
    for p in found:
        check_person(p)


def responses_tools(provider: str, m: dict[str, Any]) -> None:
    out = client(instructor.Mode.RESPONSES_TOOLS).responses.create(
        model=m["chat"], response_model=Person, input="Invent a person.", max_retries=0
    )
    check_person(out)


def image(provider: str, m: dict[str, Any]) -> None:
    messages: Any = [
        {
            "role": "user",
            "content": ["Invent a person who likes this colour.", instructor.Image.from_base64(PNG_URL)],
        }
    ]
    check_person(
        client(instructor.Mode.TOOLS).create(
            model=m["chat"], response_model=Person, messages=messages, max_retries=0
        )
    )


def main() -> None:
    Matrix("instructor", version("instructor")).run_all(globals())


if __name__ == "__main__":
    main()
