"""How the OpenAI provider reads what the upstream answers (it parses the JSON itself, not through the
SDK's models): odd-but-usable answers are accepted, unusable ones are 502 ``invalid_upstream_response``,
and accounting data never costs the caller a paid-for answer."""

from __future__ import annotations

from typing import Any

import pytest

from lib.errors import InvalidUpstreamResponseError
from lib.providers.base import ChatRequest, EmbedRequest, Message, ToolCall
from lib.providers.deadline import Deadline
from lib.providers.openai import OpenAIProvider
from tests.conftest import make_settings
from tests.support.openai_mock import CHAT, EMBEDDINGS, MODELS, OpenAIMock, Reply, completion

PLATFORM = {
    "x-stainless-lang",
    "x-stainless-package-version",
    "x-stainless-os",
    "x-stainless-arch",
    "x-stainless-runtime",
    "x-stainless-runtime-version",
    "x-stainless-async",
}


@pytest.fixture
def provider(openai_mock: OpenAIMock) -> OpenAIProvider:
    return OpenAIProvider(make_settings(openai_api_key="sk-answers", openai_base_url=openai_mock.base_url))


def _chat(provider: OpenAIProvider) -> Any:
    return provider.chat(ChatRequest(model="gpt-4o", messages=[Message("user", "hi")]), Deadline(10))


def _embed(provider: OpenAIProvider, texts: list[str]) -> Any:
    return provider.embed(EmbedRequest("text-embedding-3-small", texts), Deadline(10))


def _with(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**body, **changes}


def test_tool_calls_are_typed_not_text(provider: OpenAIProvider, openai_mock: OpenAIMock) -> None:
    calls = [{"id": "c1", "type": "function", "function": {"name": "grade", "arguments": '{"a": 1}'}}]
    body = completion("x")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": calls}
    body["choices"][0]["finish_reason"] = "tool_calls"
    openai_mock.script(CHAT, body)
    result = _chat(provider)
    assert result.choices[0].text == ""
    assert result.choices[0].tool_calls == (ToolCall("c1", "grade", '{"a": 1}'),)
    assert result.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    "usage",
    [None, "lots", {"prompt_tokens": 12.0, "completion_tokens": "3"}, {"prompt_tokens": -1}, []],
    ids=["missing", "not-an-object", "float-and-string", "negative", "list"],
)
def test_odd_usage_never_fails_a_paid_answer(
    provider: OpenAIProvider, openai_mock: OpenAIMock, usage: object
) -> None:
    body = completion("fine")
    if usage is None:
        del body["usage"]
    else:
        body["usage"] = usage
    openai_mock.script(CHAT, body)
    result = _chat(provider)
    assert result.choices[0].text == "fine"
    assert result.usage.prompt_tokens >= 0 and result.usage.completion_tokens >= 0
    if isinstance(usage, dict) and usage.get("prompt_tokens") == 12.0:
        assert result.usage.prompt_tokens == 12


def test_missing_choice_index_falls_back_to_position(
    provider: OpenAIProvider, openai_mock: OpenAIMock
) -> None:
    body = completion(["a", "b"])
    for choice in body["choices"]:
        choice["index"] = None
    openai_mock.script(CHAT, body)
    assert [(c.index, c.text) for c in _chat(provider).choices] == [(0, "a"), (1, "b")]


@pytest.mark.parametrize(
    "reply",
    [
        Reply(raw=b"[1, 2, 3]", headers={"Content-Type": "application/json"}),
        Reply(body=_with(completion("x"), choices="nope")),
        Reply(body=_with(completion("x"), choices=[{"index": 0}])),
        Reply(body=_with(completion("x"), choices=[{"message": {"content": 5}}])),
        Reply(body=_with(completion("x"), choices=[{"message": {"content": None, "tool_calls": "oops"}}])),
    ],
    ids=["json-array", "choices-not-a-list", "no-message", "content-not-text", "tool-calls-not-a-list"],
)
def test_unusable_chat_answers_are_invalid_upstream_responses(
    provider: OpenAIProvider, openai_mock: OpenAIMock, reply: Reply
) -> None:
    openai_mock.script(CHAT, reply)
    with pytest.raises(InvalidUpstreamResponseError):
        _chat(provider)


def _embedding_body(items: list[tuple[Any, Any]]) -> dict[str, Any]:
    return {
        "object": "list",
        "model": "text-embedding-3-small",
        "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in items],
        "usage": {"prompt_tokens": 2, "total_tokens": 2},
    }


def test_embeddings_come_back_in_input_order(provider: OpenAIProvider, openai_mock: OpenAIMock) -> None:
    openai_mock.script(EMBEDDINGS, _embedding_body([(2, [3.0]), (0, [1.0]), (1, [2])]))
    result = _embed(provider, ["a", "b", "c"])
    assert result.vectors == [[1.0], [2.0], [3.0]]
    assert all(isinstance(x, float) for v in result.vectors for x in v)


@pytest.mark.parametrize(
    "items",
    [
        [(0, [1.0]), (0, [2.0])],
        [(0, [1.0]), (2, [2.0])],
        [(0, [1.0]), (None, [2.0])],
        [(0, [1.0]), (1, [float("nan")])],
        [(0, [1.0]), (1, ["1.5"])],
        [(0, [1.0]), (1, [True])],
        [(0, [1.0]), (1, [])],
    ],
    ids=["repeated-index", "gap", "no-index", "nan", "string", "bool", "empty"],
)
def test_unusable_embeddings_are_invalid_upstream_responses(
    provider: OpenAIProvider, openai_mock: OpenAIMock, items: list[tuple[Any, Any]]
) -> None:
    # NaN is not JSON, but Python's json (and so the upstream stand-in and our parser) accepts it.
    openai_mock.script(EMBEDDINGS, _embedding_body(items))
    with pytest.raises(InvalidUpstreamResponseError):
        _embed(provider, ["a", "b"])


def test_no_platform_headers_on_any_call(provider: OpenAIProvider, openai_mock: OpenAIMock) -> None:
    _chat(provider)
    _embed(provider, ["a"])
    provider.list_models(Deadline(10))
    deltas = list(
        provider.chat_stream(ChatRequest(model="gpt-4o", messages=[Message("user", "hi")]), Deadline(10))
    )
    assert deltas
    for path in (CHAT, EMBEDDINGS, MODELS):
        for call in openai_mock.calls(path):
            assert call.headers["authorization"] == "Bearer sk-answers"
            assert not PLATFORM & set(call.headers), (path, sorted(call.headers))
    assert len(openai_mock.calls(CHAT)) == 2  # one plain, one streamed
