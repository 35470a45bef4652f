"""End to end through real boto3 and a loopback bedrock-runtime (``tests.support.bedrock_mock``):
wire format, inference-profile ids in the URL, parallel calls, streams, errors, deadlines, credentials."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from lib.errors import (
    AIProxyError,
    AuthenticationError,
    ContextTooLongError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    RateLimitedError,
    UnknownModelError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from lib.providers.base import ChatDelta, ChatRequest, EmbedRequest, JsonSchema, Message, Usage
from lib.providers.bedrock import BedrockProvider
from lib.providers.deadline import Deadline
from lib.providers.gateway import Gateway
from lib.settings import Settings, SettingsError, load_settings
from tests.providers.bedrock.conftest import bedrock_settings
from tests.support.bedrock_mock import (
    CONVERSE,
    CONVERSE_STREAM,
    INVOKE,
    BedrockMock,
    Recorded,
    Reply,
    converse_answer,
    error,
    exception_event,
    fake_vector,
    stream_events,
)

SONNET_PROFILE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
SONNET_35 = "anthropic.claude-3-5-sonnet-20240620-v1:0"
Factory = Callable[[Settings], BedrockProvider]


def ask(text: str = "hello", **kw: Any) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", SONNET_PROFILE), messages=[Message("user", text)], **kw)


# --- wire format ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "path"),
    [
        (SONNET_PROFILE, "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse"),
        (
            "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
            "/model/global.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse",
        ),
        (SONNET_35, "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
    ],
)
def test_model_and_inference_profile_ids_are_sent_unchanged(
    provider: BedrockProvider, bedrock_mock: BedrockMock, model: str, path: str
) -> None:
    result = provider.chat(ask("hi there", model=model), Deadline(5))
    (seen,) = bedrock_mock.calls(CONVERSE)
    assert seen.path == path and seen.model_id == model
    assert result.model == model and result.choices[0].text == "echo: hi there"


def test_system_and_history_on_the_wire(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    provider.chat(
        ChatRequest(
            model=SONNET_PROFILE,
            messages=[
                Message("system", "Grade this."),
                Message("system", "Use the rubric."),
                Message("user", "def f(): pass"),
                Message("assistant", "ok"),
                Message("user", "and this?"),
                Message("user", "x = 1"),
            ],
            temperature=0.3,
        ),
        Deadline(5),
    )
    sent = bedrock_mock.calls(CONVERSE)[0].json
    assert sent == {
        "system": [{"text": "Grade this.\n\nUse the rubric."}],
        "messages": [
            {"role": "user", "content": [{"text": "def f(): pass"}]},
            {"role": "assistant", "content": [{"text": "ok"}]},
            {"role": "user", "content": [{"text": "and this?\n\nx = 1"}]},
        ],
        "inferenceConfig": {"maxTokens": 4096, "temperature": 0.3},
    }
    # SigV4-signed for the configured region with the ambient (dummy) credentials
    auth = bedrock_mock.calls(CONVERSE)[0].headers["Authorization"]
    assert "Credential=testing/" in auth and "/us-east-1/bedrock/aws4_request" in auth


def test_n_choices_are_parallel_calls_with_summed_usage(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    together = threading.Barrier(3, timeout=5)  # answers only when all three calls are in flight
    counter = iter(range(1, 4))
    lock = threading.Lock()

    def answer(_req: Recorded) -> dict[str, Any]:
        together.wait()
        with lock:
            i = next(counter)
        return converse_answer(f"answer {i}", input_tokens=10, output_tokens=i)

    bedrock_mock.on(CONVERSE, answer)
    result = provider.chat(ask(n=3), Deadline(10))
    assert len(bedrock_mock.calls(CONVERSE)) == 3
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert sorted(c.text for c in result.choices) == ["answer 1", "answer 2", "answer 3"]
    assert result.usage == Usage(30, 6)


def test_n_out_of_range_is_refused(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    for n in (0, 17):
        with pytest.raises(InvalidRequestError, match="between 1 and 16 for Bedrock models") as info:
            provider.chat(ask(n=n), Deadline(5))
        assert info.value.field == "n"
    assert bedrock_mock.requests == []


def test_structured_output_through_tool_use(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    schema = JsonSchema(
        "rubric_result",
        {
            "type": "object",
            "properties": {"key_concept": {"type": "string"}, "grade": {"type": "integer"}},
            "required": ["key_concept", "grade"],
        },
    )
    result = provider.chat(ask("grade", json_schema=schema), Deadline(5))
    sent = bedrock_mock.calls(CONVERSE)[0].json
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "rubric_result"}}
    assert json.loads(result.choices[0].text) == {"key_concept": "mock", "grade": 0}
    assert result.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("guardrail_intervened", "content_filter"),
    ],
)
def test_stop_reasons_over_http(
    provider: BedrockProvider, bedrock_mock: BedrockMock, stop_reason: str, expected: str
) -> None:
    bedrock_mock.script(CONVERSE, converse_answer("x", stop_reason=stop_reason))
    assert provider.chat(ask(), Deadline(5)).choices[0].finish_reason == expected


# --- streaming ----------------------------------------------------------------------------------


def test_stream_yields_text_then_finish_and_usage(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    bedrock_mock.script(
        CONVERSE_STREAM,
        Reply(
            events=stream_events(
                ["Hel", "lo", "!"], stop_reason="max_tokens", input_tokens=9, output_tokens=3
            )
        ),
    )
    deltas = list(provider.chat_stream(ask("hi", max_tokens=3), Deadline(5)))
    assert [d.text for d in deltas[:-1]] == ["Hel", "lo", "!"]
    assert deltas[-1] == ChatDelta(text="", finish_reason="length", usage=Usage(9, 3))
    seen = bedrock_mock.calls(CONVERSE_STREAM)[0]
    assert seen.path == "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream"
    assert seen.json["inferenceConfig"] == {"maxTokens": 3}


def test_stream_of_structured_output_streams_the_tool_json(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    bedrock_mock.script(
        CONVERSE_STREAM,
        Reply(events=stream_events([], stop_reason="tool_use", tool=("answer", ['{"gra', 'de": "B"}']))),
    )
    schema = JsonSchema("answer", {"type": "object", "properties": {"grade": {"type": "string"}}})
    deltas = list(provider.chat_stream(ask(json_schema=schema), Deadline(5)))
    assert json.loads("".join(d.text for d in deltas)) == {"grade": "B"}
    assert deltas[-1].finish_reason == "stop"


def test_stream_of_wrapped_schema_is_unwrapped(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(
        CONVERSE_STREAM,
        Reply(events=stream_events([], stop_reason="tool_use", tool=("grades", ['{"value": [1,', " 2]}"]))),
    )
    schema = JsonSchema("grades", {"type": "array", "items": {"type": "integer"}})
    deltas = list(provider.chat_stream(ask(json_schema=schema), Deadline(5)))
    assert json.loads("".join(d.text for d in deltas)) == [1, 2]


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("throttlingException", "slow down", RateLimitedError),
        ("modelStreamErrorException", "boom", UpstreamUnavailableError),
        ("validationException", "Input is too long for requested model.", ContextTooLongError),
    ],
)
def test_stream_error_event(
    provider: BedrockProvider,
    bedrock_mock: BedrockMock,
    code: str,
    message: str,
    expected: type[AIProxyError],
) -> None:
    events = [*stream_events(["partial"])[:2], exception_event(code, message)]
    bedrock_mock.script(CONVERSE_STREAM, Reply(events=events))
    stream = provider.chat_stream(ask(), Deadline(5))
    assert next(stream).text == "partial"
    with pytest.raises(expected):
        next(stream)


def test_stream_error_before_first_delta(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE_STREAM, error("ThrottlingException", retry_after="1"))
    with pytest.raises(RateLimitedError) as info:
        next(iter(provider.chat_stream(ask(), Deadline(5))))
    assert info.value.retry_after == 1.0


def test_truncated_stream_is_invalid(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE_STREAM, Reply(events=stream_events(["a", "b"])[:3]))
    with pytest.raises(InvalidUpstreamResponseError):
        list(provider.chat_stream(ask(), Deadline(5)))


def test_stream_respects_the_deadline_between_events(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    bedrock_mock.script(CONVERSE_STREAM, Reply(events=stream_events(["a", "b", "c"]), event_delay=0.5))
    stream = provider.chat_stream(ask(), Deadline(0.6))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        for _ in stream:
            pass
    assert time.monotonic() - started < 1.5  # the whole stream takes 3.5 s


def test_abandoned_stream_is_closed(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE_STREAM, Reply(events=stream_events(["a"] * 50), event_delay=0.06))
    started = time.monotonic()
    stream = provider.chat_stream(ask(), Deadline(10))
    assert next(stream).text == "a"
    assert time.monotonic() - started < 1.5, "deltas must arrive as they are sent, not at the end (3 s)"
    started = time.monotonic()
    stream.close()  # the client went away
    assert time.monotonic() - started < 0.5
    # the provider still works afterwards
    assert provider.chat(ask("again"), Deadline(5)).choices[0].text == "echo: again"


# --- embeddings ---------------------------------------------------------------------------------


def test_titan_v1_batch_in_order(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    texts = [f"text number {i}" for i in range(12)]
    result = provider.embed(EmbedRequest("amazon.titan-embed-text-v1", texts), Deadline(5))
    assert result.vectors == [fake_vector(t, 1536) for t in texts]
    assert result.dimensions == 1536
    assert result.usage == Usage(sum(len(t.split()) + 1 for t in texts), 0)
    sent = bedrock_mock.calls(INVOKE)
    assert len(sent) == 12
    assert {r.path for r in sent} == {"/model/amazon.titan-embed-text-v1/invoke"}
    assert sorted(r.json["inputText"] for r in sent) == sorted(texts)
    assert all(set(r.json) == {"inputText"} for r in sent)


def test_titan_v2_dimensions_and_normalize(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    result = provider.embed(
        EmbedRequest("amazon.titan-embed-text-v2:0", ["a", "b"], dimensions=512), Deadline(5)
    )
    assert result.dimensions == 512
    assert [r.json for r in sorted(bedrock_mock.calls(INVOKE), key=lambda r: r.json["inputText"])] == [
        {"inputText": "a", "dimensions": 512, "normalize": True},
        {"inputText": "b", "dimensions": 512, "normalize": True},
    ]
    assert bedrock_mock.calls(INVOKE)[0].path == "/model/amazon.titan-embed-text-v2%3A0/invoke"
    with pytest.raises(InvalidRequestError) as info:
        provider.embed(EmbedRequest("amazon.titan-embed-text-v2:0", ["a"], dimensions=100), Deadline(5))
    assert info.value.field == "dimensions"


def test_titan_calls_run_in_parallel_but_bounded(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(req: Recorded) -> dict[str, Any]:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.1)
        with lock:
            state["now"] -= 1
        return {"embedding": fake_vector(req.json["inputText"], 4), "inputTextTokenCount": 1}

    bedrock_mock.on(INVOKE, slow)
    result = provider.embed(
        EmbedRequest("amazon.titan-embed-text-v1", [f"t{i}" for i in range(24)]), Deadline(20)
    )
    assert len(result.vectors) == 24 and result.usage.prompt_tokens == 24
    assert 2 <= state["peak"] <= 8


def test_cohere_batches(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    texts = [f"doc {i}" for i in range(100)]
    result = provider.embed(EmbedRequest("cohere.embed-english-v3", texts), Deadline(5))
    assert result.vectors == [fake_vector(t, 1024) for t in texts]
    assert sorted(len(r.json["texts"]) for r in bedrock_mock.calls(INVOKE)) == [4, 96]
    assert result.usage.prompt_tokens == 200


def test_embedding_input_checks(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    with pytest.raises(InvalidRequestError) as info:
        provider.embed(EmbedRequest(SONNET_PROFILE, ["a"]), Deadline(5))
    assert info.value.field == "model"
    with pytest.raises(InvalidRequestError) as info:
        provider.embed(EmbedRequest("amazon.titan-embed-text-v1", ["a", ""]), Deadline(5))
    assert info.value.field == "input"
    assert provider.embed(EmbedRequest("amazon.titan-embed-text-v1", []), Deadline(5)).vectors == []
    assert bedrock_mock.requests == []


def test_embedding_error_stops_the_batch(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(INVOKE, error("AccessDeniedException", "no access"))
    with pytest.raises(AuthenticationError):
        provider.embed(EmbedRequest("amazon.titan-embed-text-v1", ["a", "b", "c"]), Deadline(5))


def test_embedding_answer_not_json(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(INVOKE, Reply(raw=b"<html>oops</html>"))
    with pytest.raises(InvalidUpstreamResponseError):
        provider.embed(EmbedRequest("amazon.titan-embed-text-v1", ["a"]), Deadline(5))


# --- errors over HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (error("ThrottlingException", "Too many requests"), RateLimitedError),
        (error("ServiceUnavailableException"), UpstreamUnavailableError),
        (error("InternalServerException"), UpstreamUnavailableError),
        (error("ModelNotReadyException"), UpstreamUnavailableError),
        (error("ModelTimeoutException"), UpstreamTimeoutError),
        (error("AccessDeniedException", "You don't have access to the model"), AuthenticationError),
        (
            error("UnrecognizedClientException", "The security token included in the request is invalid."),
            AuthenticationError,
        ),
        (error("ExpiredTokenException", "expired"), AuthenticationError),
        (error("ValidationException", "Input is too long for requested model."), ContextTooLongError),
        (error("ValidationException", "messages.0: bad role"), InvalidRequestError),
        (error("ResourceNotFoundException", "Model not found"), UnknownModelError),
        (Reply(status=502, raw=b"<html>Bad Gateway</html>"), UpstreamUnavailableError),
        (Reply(status=200, raw=b"not json at all"), InvalidUpstreamResponseError),
        (Reply(status=200, body={"unexpected": True}), InvalidUpstreamResponseError),
        (Reply(reset=True), UpstreamUnavailableError),
    ],
)
def test_http_errors(
    provider: BedrockProvider, bedrock_mock: BedrockMock, reply: Reply, expected: type[AIProxyError]
) -> None:
    bedrock_mock.script(CONVERSE, reply)
    with pytest.raises(AIProxyError) as info:
        provider.chat(ask("student code: x = 1"), Deadline(5))
    assert type(info.value) is expected
    assert "student code" not in info.value.message
    assert len(bedrock_mock.calls(CONVERSE)) == 1  # botocore does not retry: the gateway does


def test_throttling_retry_after_over_http(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE, error("ThrottlingException", retry_after="2"))
    with pytest.raises(RateLimitedError) as info:
        provider.chat(ask(), Deadline(5))
    assert info.value.retry_after == 2.0 and info.value.upstream_status == 429


def test_resource_not_found_names_the_model(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE, error("ResourceNotFoundException"))
    with pytest.raises(UnknownModelError) as info:
        provider.chat(ask(model="us.anthropic.claude-nonexistent-v9:0"), Deadline(5))
    assert "us.anthropic.claude-nonexistent-v9:0" in info.value.message and info.value.field == "model"


def test_connection_refused(make_provider: Factory) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    provider = make_provider(bedrock_settings(f"http://127.0.0.1:{port}"))
    with pytest.raises(UpstreamUnavailableError):
        provider.chat(ask(), Deadline(5))


# --- deadlines ----------------------------------------------------------------------------------


def test_hanging_upstream_ends_at_the_deadline(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    bedrock_mock.script(CONVERSE, Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        provider.chat(ask(), Deadline(0.5))
    assert 0.45 <= time.monotonic() - started < 1.5  # the upstream never answers


def test_expired_deadline_sends_nothing(provider: BedrockProvider, bedrock_mock: BedrockMock) -> None:
    deadline = Deadline(0.01)
    time.sleep(0.02)
    with pytest.raises(UpstreamTimeoutError):
        provider.chat(ask(), deadline)
    with pytest.raises(UpstreamTimeoutError):
        provider.embed(EmbedRequest("amazon.titan-embed-text-v1", ["a"]), deadline)
    assert bedrock_mock.requests == []


def test_client_read_timeout_is_the_request_deadline(
    bedrock_mock: BedrockMock, make_provider: Factory
) -> None:
    provider = make_provider(bedrock_settings(bedrock_mock.endpoint_url, request_deadline_seconds=0.4))
    bedrock_mock.script(CONVERSE, Reply(hang=True))
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        provider.chat(ask(), Deadline(30))  # a longer per-call deadline: botocore's read timeout fires
    assert time.monotonic() - started < 3.0
    assert len(bedrock_mock.calls(CONVERSE)) == 1


def test_gateway_stops_retrying_at_the_deadline(bedrock_mock: BedrockMock, make_provider: Factory) -> None:
    settings = bedrock_settings(bedrock_mock.endpoint_url, request_deadline_seconds=1.0, max_retries=10)
    provider = make_provider(settings)
    gateway = Gateway(settings, factories={"bedrock": lambda _s: provider})
    bedrock_mock.script(CONVERSE, *[Reply(hang=True)] * 3)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeoutError):
        gateway.chat(f"bedrock.{SONNET_PROFILE}", [Message("user", "hi")])
    assert time.monotonic() - started < 2.0  # the upstream never answers; 10 retries allowed
    assert len(bedrock_mock.calls(CONVERSE)) == 1


def test_gateway_retries_throttling_within_the_deadline(
    bedrock_mock: BedrockMock, make_provider: Factory
) -> None:
    settings = bedrock_settings(bedrock_mock.endpoint_url, request_deadline_seconds=1.0, max_retries=10)
    provider = make_provider(settings)
    gateway = Gateway(settings, factories={"bedrock": lambda _s: provider})
    bedrock_mock.script(CONVERSE, *[error("ThrottlingException", retry_after="0.3")] * 20)
    started = time.monotonic()
    with pytest.raises(RateLimitedError):
        gateway.chat(f"bedrock.{SONNET_PROFILE}", [Message("user", "hi")])
    assert time.monotonic() - started < 2.0
    assert 2 <= len(bedrock_mock.calls(CONVERSE)) <= 4  # never more than the deadline allows


def test_gateway_recovers_after_throttling(bedrock_mock: BedrockMock, make_provider: Factory) -> None:
    settings = bedrock_settings(bedrock_mock.endpoint_url)
    provider = make_provider(settings)
    gateway = Gateway(settings, factories={"bedrock": lambda _s: provider})
    bedrock_mock.script(CONVERSE, error("ThrottlingException"), error("ServiceUnavailableException"))
    result = gateway.chat(f"bedrock.{SONNET_PROFILE}", [Message("user", "hi")])
    assert result.choices[0].text == "echo: hi"
    assert len(bedrock_mock.calls(CONVERSE)) == 3
    embedded = gateway.embed("bedrock.amazon.titan-embed-text-v2:0", ["hi"], dimensions=256)
    assert embedded.dimensions == 256
    route, stream = gateway.chat_stream(f"bedrock.{SONNET_PROFILE}", [Message("user", "hi you")])
    assert route.model_id == SONNET_PROFILE
    assert "".join(d.text for d in stream) == "echo: hi you"


# --- client configuration and credentials -------------------------------------------------------


def test_client_configuration(make_provider: Factory) -> None:
    settings = bedrock_settings(
        "http://127.0.0.1:9", aws_region="eu-central-1", request_deadline_seconds=42.0, upstream_pool_size=64
    )
    config = make_provider(settings).client.meta.config
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}
    assert (config.connect_timeout, config.read_timeout) == (2.0, 42.0)
    assert config.max_pool_connections == 64 and config.tcp_keepalive is True
    assert config.region_name == "eu-central-1"


def test_endpoint_from_environment_variable(
    bedrock_mock: BedrockMock, make_provider: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore's own AWS_ENDPOINT_URL_BEDROCK_RUNTIME handling works when the setting is unset."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock_mock.endpoint_url)
    settings = bedrock_settings(None).model_copy(update={"aws_endpoint_url_bedrock_runtime": None})
    provider = make_provider(settings)
    assert provider.chat(ask("via env"), Deadline(5)).choices[0].text == "echo: via env"
    # ... and the same variable also fills the setting
    assert (
        load_settings(config_file="/nonexistent").aws_endpoint_url_bedrock_runtime
        == bedrock_mock.endpoint_url
    )


def test_explicit_keys_and_region_from_settings(bedrock_mock: BedrockMock, make_provider: Factory) -> None:
    provider = make_provider(
        bedrock_settings(
            bedrock_mock.endpoint_url,
            aws_region="eu-west-1",
            aws_access_key_id="AKIDFROMSETTINGS",
            aws_secret_access_key="secret-from-settings",
            aws_session_token="token-from-settings",
        )
    )
    provider.chat(ask(), Deadline(5))
    headers = bedrock_mock.calls(CONVERSE)[0].headers
    assert "Credential=AKIDFROMSETTINGS/" in headers["Authorization"]
    assert "/eu-west-1/bedrock/aws4_request" in headers["Authorization"]
    assert headers["X-Amz-Security-Token"] == "token-from-settings"


def test_half_configured_keys_stop_start_up(
    bedrock_mock: BedrockMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # the settings read it from the environment too
    with pytest.raises(SettingsError, match="AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") as info:
        bedrock_settings(bedrock_mock.endpoint_url, aws_access_key_id="AKIDONLY")
    assert "AKIDONLY" not in str(info.value)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(SettingsError, match="must be set together"):
        bedrock_settings(bedrock_mock.endpoint_url, aws_secret_access_key="only-the-secret")
    # A blank value is "not set" (e.g. an uncommented `AWS_SECRET_ACCESS_KEY=` sample line).
    assert (
        bedrock_settings(bedrock_mock.endpoint_url, aws_secret_access_key="  ").aws_secret_access_key is None
    )
    # Settings built around the check (model_copy skips validation) still never reach another identity.
    whole = bedrock_settings(bedrock_mock.endpoint_url, aws_access_key_id="AKIDX", aws_secret_access_key="s")
    with pytest.raises(AuthenticationError, match="set together"):
        BedrockProvider(whole.model_copy(update={"aws_secret_access_key": None}))


def test_stream_opened_after_the_deadline_is_closed(
    provider: BedrockProvider, bedrock_mock: BedrockMock
) -> None:
    bedrock_mock.script(CONVERSE_STREAM, Reply(events=stream_events(["late"]), delay=0.6))
    with pytest.raises(UpstreamTimeoutError):
        next(iter(provider.chat_stream(ask(), Deadline(0.3))))
    time.sleep(0.6)  # the abandoned call completes in the background and its stream is closed
    assert provider.chat(ask("after"), Deadline(5)).choices[0].text == "echo: after"


def test_profile_from_settings(
    bedrock_mock: BedrockMock, make_provider: Factory, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    creds = tmp_path / "credentials"
    creds.write_text("[aiproxy-test]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = s\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = make_provider(bedrock_settings(bedrock_mock.endpoint_url, aws_profile="aiproxy-test"))
    provider.chat(ask(), Deadline(5))
    assert "Credential=AKIDPROFILE/" in bedrock_mock.calls(CONVERSE)[0].headers["Authorization"]
    with pytest.raises(AuthenticationError):
        BedrockProvider(bedrock_settings(bedrock_mock.endpoint_url, aws_profile="no-such-profile"))


def test_no_credentials_is_an_authentication_error(
    bedrock_mock: BedrockMock, make_provider: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    provider = make_provider(bedrock_settings(bedrock_mock.endpoint_url))
    with pytest.raises(AuthenticationError) as info:
        provider.chat(ask(), Deadline(5))
    assert "NoCredentialsError" in info.value.message
    assert bedrock_mock.requests == []


def test_list_models_is_static_and_includes_configured_defaults(make_provider: Factory) -> None:
    provider = make_provider(
        bedrock_settings(
            "http://127.0.0.1:9", default_chat_model="bedrock.us.meta.llama4-maverick-17b-instruct-v1:0"
        )
    )
    ids = [m.id for m in provider.list_models(Deadline(1))]
    assert f"bedrock.{SONNET_PROFILE}" in ids and f"bedrock.{SONNET_35}" in ids
    assert "bedrock.amazon.titan-embed-text-v1" in ids and "bedrock.amazon.titan-embed-text-v2:0" in ids
    assert "bedrock.us.meta.llama4-maverick-17b-instruct-v1:0" in ids
    assert all(m.provider == "bedrock" for m in provider.list_models(Deadline(1)))
