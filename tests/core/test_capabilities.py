"""The one capability decision: a feature the routed model lacks is a 400 naming the field."""

from __future__ import annotations

import pytest

from lib.errors import InvalidRequestError
from lib.providers.base import ChatRequest, ImagePart, Message, Sampling, TextPart, Tool, ToolChoice
from lib.providers.capabilities import require
from lib.providers.routing import resolve_model

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16
TOOL = Tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}})


def _req(**kw: object) -> ChatRequest:
    return ChatRequest(model="", messages=kw.pop("messages", [Message("user", "hi")]), **kw)  # type: ignore[arg-type]


def _field(model: str, req: ChatRequest) -> str | None:
    try:
        require(resolve_model(model), req)
    except InvalidRequestError as exc:
        return exc.field
    return None


def test_openai_passes_everything() -> None:
    req = _req(sampling=Sampling(seed=1, logprobs=True, top_logprobs=2, logit_bias={"1": 2.0}))
    assert _field("gpt-4o", req) is None


@pytest.mark.parametrize(
    ("fld", "sampling"),
    [
        ("seed", Sampling(seed=3)),
        ("presence_penalty", Sampling(presence_penalty=0.5)),
        ("frequency_penalty", Sampling(frequency_penalty=0.5)),
        ("logit_bias", Sampling(logit_bias={"5": 1.0})),
        ("logprobs", Sampling(logprobs=True)),
    ],
)
def test_bedrock_refuses_what_converse_lacks(fld: str, sampling: Sampling) -> None:
    assert _field("bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0", _req(sampling=sampling)) == fld


def test_bedrock_honours_top_p_and_user() -> None:
    req = _req(sampling=Sampling(top_p=0.5, user="u1"))
    assert _field("bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0", req) is None


def test_tools_and_forced_choice_by_bedrock_family() -> None:
    tools = _req(tools=(TOOL,), tool_choice=ToolChoice("required"))
    assert _field("bedrock.us.amazon.nova-pro-v1:0", tools) is None
    assert _field("bedrock.us.meta.llama3-3-70b-instruct-v1:0", tools) == "tool_choice"
    assert _field("bedrock.us.meta.llama3-3-70b-instruct-v1:0", _req(tools=(TOOL,))) is None
    assert _field("bedrock.amazon.titan-text-express-v1", _req(tools=(TOOL,))) == "tools"


def test_images() -> None:
    msg = Message("user", (TextPart("what is this"), ImagePart("image/png", PNG)))
    assert _field("bedrock.us.amazon.nova-micro-v1:0", _req(messages=[msg])) == "messages"
    assert _field("bedrock.us.amazon.nova-lite-v1:0", _req(messages=[msg])) is None
    with pytest.raises(InvalidRequestError, match="does not accept images"):
        require(resolve_model("local"), _req(messages=[msg]))


def test_local_sampling() -> None:
    assert _field("local", _req(sampling=Sampling(top_p=0.9, seed=1, presence_penalty=0.1))) is None
    assert _field("local", _req(sampling=Sampling(logit_bias={"1": 1.0}))) == "logit_bias"


def test_local_takes_tools_one_call_at_a_time() -> None:
    assert _field("local", _req(tools=(TOOL,))) is None
    assert _field("local", _req(tools=(TOOL,), tool_choice=ToolChoice("required"))) is None
    assert _field("local", _req(tools=(TOOL,), parallel_tool_calls=False)) is None
