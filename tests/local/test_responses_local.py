"""``client.responses`` (the official openai SDK) against the real service under gunicorn answering with
the embedded SmolLM2: the Responses API is translated to the same local chat call as
``/v1/chat/completions``. Few, short generations (``max_output_tokens`` small, temperature 0)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from typing import Any

import jsonschema_rs
import pytest
from openai import OpenAI
from openai.types.responses import ResponseFunctionToolCall
from pydantic import BaseModel

from tests.local.conftest import needs_models
from tests.support.server import Service

pytestmark = [pytest.mark.local, pytest.mark.e2e, needs_models]
KEY = "local-responses-key"
ADD: Any = {
    "type": "function",
    "name": "add",
    "description": "Add two integers",
    "parameters": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
        "additionalProperties": False,
    },
    "strict": True,
}


class Guess(BaseModel):
    number: int
    sure: bool


@pytest.fixture(scope="module")
def client() -> Iterator[OpenAI]:
    env = {"AIPROXY_API_KEY": KEY, "HOME": tempfile.mkdtemp(prefix="aiproxy-local-home-")}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env[var] = ""
    with Service(env=env, workers=1, startup_timeout=60) as svc:
        sdk = OpenAI(base_url=svc.url + "/v1", api_key=KEY, max_retries=0, timeout=120)
        yield sdk
        sdk.close()


def test_create_and_stream_give_the_same_text(client: OpenAI) -> None:
    ask: dict[str, Any] = {
        "model": "local",
        "instructions": "You are a helpful assistant.",
        "input": "Name a colour.",
        "temperature": 0,
        "max_output_tokens": 12,
    }
    whole = client.responses.create(**ask)
    assert whole.model == "local-smollm2-135m-instruct" and whole.output_text
    assert whole.status in ("completed", "incomplete")
    if whole.status == "incomplete":
        assert whole.incomplete_details is not None and whole.incomplete_details.reason == "max_output_tokens"
    assert whole.usage is not None and 0 < whole.usage.output_tokens <= 12

    with client.responses.create(stream=True, **ask) as stream:
        events = list(stream)
    assert [e.type for e in events[:2]] == ["response.created", "response.in_progress"]
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = events[-1]
    assert final.type == f"response.{whole.status}"
    assert streamed == final.response.output_text == whole.output_text


def test_parse_into_a_pydantic_model(client: OpenAI) -> None:
    out = client.responses.parse(
        model="local",
        input="Guess a number between 1 and 9 and say whether you are sure.",
        text_format=Guess,
        temperature=0,
        max_output_tokens=40,
    )
    assert isinstance(out.output_parsed, Guess)


def test_function_call_and_its_output(client: OpenAI) -> None:
    history: list[Any] = [{"role": "user", "content": "What is 2 plus 3?"}]
    first = client.responses.create(
        model="local", input=history, tools=[ADD], tool_choice="required", temperature=0, max_output_tokens=40
    )
    (call,) = [item for item in first.output if isinstance(item, ResponseFunctionToolCall)]
    assert call.name == "add" and call.call_id.startswith("call_")
    jsonschema_rs.validate(ADD["parameters"], json.loads(call.arguments))
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "5"})
    second = client.responses.create(
        model="local", input=history, tools=[ADD], tool_choice="none", temperature=0, max_output_tokens=16
    )
    assert second.output_text and not [i for i in second.output if i.type == "function_call"]
