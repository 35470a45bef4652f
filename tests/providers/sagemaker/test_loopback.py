"""The SageMaker provider through the real boto3 ``sagemaker-runtime`` client against the loopback
stand-in: the Messages API body, inference components, parallel choices, structured output, the
event-stream framing of streamed answers, error mapping and the request deadline."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from lib.errors import (
    ContextTooLongError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    RateLimitedError,
    UnknownModelError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from lib.providers.base import ImagePart, JsonSchema, Message, Sampling, Tool
from lib.providers.gateway import Gateway, RetryPolicy
from lib.providers.sagemaker.messages import SseLines, endpoint_ref
from lib.providers.sagemaker.provider import SageMakerProvider
from tests.providers.bedrock.conftest import bedrock_settings
from tests.support import sagemaker_mock as sm
from tests.support.sagemaker_mock import SageMakerMock

MODEL = "sagemaker.llama-3-8b-instruct"
HELLO = [Message("system", "Be brief."), Message("user", "hello there")]
TOO_LONG = '{"error":"Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096"}'


def test_endpoint_from_the_setting_or_botocore_itself(
    sagemaker_mock: SageMakerMock, gateway: Gateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    provider = gateway.provider("sagemaker")
    assert isinstance(provider, SageMakerProvider)
    assert provider.client.meta.endpoint_url == sagemaker_mock.endpoint_url
    # Settings built without the value (e.g. by a caller): botocore reads the variable itself.
    bare = gateway.settings.model_copy(update={"aws_endpoint_url_sagemaker_runtime": None})
    assert SageMakerProvider(bare).client.meta.endpoint_url == sagemaker_mock.endpoint_url
    # Only in config.txt (not in the environment): the setting is passed to the client.
    monkeypatch.delenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME")
    configured = bedrock_settings(None, aws_endpoint_url_sagemaker_runtime="http://127.0.0.1:9")
    assert SageMakerProvider(configured).client.meta.endpoint_url == "http://127.0.0.1:9"
    assert (
        SageMakerProvider(bare).client.meta.endpoint_url
        == "https://runtime.sagemaker.us-east-1.amazonaws.com"
    )


def test_chat_sends_the_messages_api_body(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    result = gateway.chat(
        MODEL,
        [*HELLO, Message("assistant", "Hi."), Message("system", "No emoji."), Message("user", "again")],
        temperature=0.2,
        max_tokens=50,
        stop=["\n\n"],
        sampling=Sampling(top_p=0.9, seed=7),
    )
    assert result.choices[0].text == "echo: again"
    assert result.choices[0].finish_reason == "stop"
    assert result.provider == "sagemaker" and result.model == "llama-3-8b-instruct"
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens == 2
    (call,) = sagemaker_mock.calls(sm.INVOKE)
    assert call.endpoint == "llama-3-8b-instruct" and call.component is None
    assert call.content_type == "application/json"
    assert call.json == {
        "messages": [
            {"role": "system", "content": "Be brief.\n\nNo emoji."},
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "again"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["\n\n"],
        "top_p": 0.9,
        "seed": 7,
    }


def test_inference_component_is_sent_as_its_header(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    gateway.chat("sagemaker.shared-gpu.mistral-7b-ic", HELLO)
    (call,) = sagemaker_mock.calls()
    assert (call.endpoint, call.component) == ("shared-gpu", "mistral-7b-ic")
    assert endpoint_ref("a.b").kwargs() == {"EndpointName": "a", "InferenceComponentName": "b"}


def test_n_choices_are_parallel_calls_with_summed_usage(
    sagemaker_mock: SageMakerMock, gateway: Gateway
) -> None:
    one = gateway.chat(MODEL, HELLO)
    three = gateway.chat(MODEL, HELLO, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert three.usage.total_tokens == 3 * one.usage.total_tokens
    assert len(sagemaker_mock.calls(sm.INVOKE)) == 4


def test_structured_output_is_an_instruction_and_fences_are_removed(
    sagemaker_mock: SageMakerMock, gateway: Gateway
) -> None:
    schema = {"type": "object", "properties": {"grade": {"type": "string", "enum": ["A", "B"]}}}
    result = gateway.chat(MODEL, HELLO, json_schema=JsonSchema("grading", schema))
    assert json.loads(result.choices[0].text) == {"grade": "A"}
    system = sagemaker_mock.calls()[0].json["messages"][0]
    assert system["role"] == "system" and "Schema (grading)" in system["content"]
    _route, deltas = gateway.chat_stream(MODEL, HELLO, json_schema=JsonSchema("grading", schema))
    assert "grade" in "".join(d.text for d in deltas)


def test_stream_reassembles_lines_split_across_payload_parts(
    sagemaker_mock: SageMakerMock, gateway: Gateway
) -> None:
    route, deltas = gateway.chat_stream(MODEL, [Message("user", "one two three four five")])
    got = list(deltas)
    assert route.provider == "sagemaker"
    assert "".join(d.text for d in got) == "echo: one two three four five"
    assert len([d for d in got if d.text]) == 6  # one delta per word: no line was lost at a cut
    assert got[-1].finish_reason == "stop" and got[-1].usage is not None
    assert got[-1].usage.completion_tokens == 6
    (call,) = sagemaker_mock.calls(sm.STREAM)
    assert call.json["stream"] is True and call.json["stream_options"] == {"include_usage": True}


def test_stream_error_event_is_translated(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    first = b'data: {"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n'
    sagemaker_mock.script(sm.STREAM, sm.stream_error([first], "ModelStreamError", "container crashed"))
    _route, deltas = gateway.chat_stream(MODEL, HELLO)
    assert next(deltas).text == "partial"
    with pytest.raises(InvalidUpstreamResponseError, match="ModelStreamError"):
        list(deltas)
    gateway.retry = RetryPolicy(0)  # failing before the first delta: raised when the stream opens
    sagemaker_mock.script(sm.STREAM, sm.stream_error([], "InternalStreamFailure", "lost"))
    with pytest.raises(UpstreamUnavailableError, match="InternalStreamFailure"):
        gateway.chat_stream(MODEL, HELLO)


def test_stream_without_finish_is_an_upstream_error(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    sagemaker_mock.script(sm.STREAM, sm.Reply(parts=[b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n']))
    _route, deltas = gateway.chat_stream(MODEL, HELLO)
    with pytest.raises(InvalidUpstreamResponseError, match="ended before"):
        list(deltas)


def test_in_band_container_error_ends_the_stream(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    bad = b'data: {"error":"Out of available cache blocks","error_type":"generation"}\n\n'
    sagemaker_mock.script(sm.STREAM, sm.Reply(parts=[bad]))
    gateway.retry = RetryPolicy(0)
    with pytest.raises(InvalidUpstreamResponseError, match="generation"):
        gateway.chat_stream(MODEL, HELLO)


@pytest.mark.parametrize(
    ("reply", "expected", "text"),
    [
        (
            sm.error("ModelError", "Received client error (500)", OriginalStatusCode=500),
            InvalidUpstreamResponseError,
            "ModelError",
        ),
        (
            sm.error(
                "ModelError",
                "Received client error (422)",
                OriginalStatusCode=422,
                OriginalMessage=TOO_LONG,
            ),
            ContextTooLongError,
            "too long",
        ),
        (
            sm.error(
                "ModelError",
                "Received client error (422)",
                OriginalStatusCode=422,
                OriginalMessage='{"error":"Input validation error: `temperature` must be strictly positive"}',
            ),
            InvalidRequestError,
            "refused the request",
        ),
        (
            sm.error("ModelError", "Received client error (429)", OriginalStatusCode=429),
            RateLimitedError,
            "busy",
        ),
        (sm.error("ThrottlingException", "Rate exceeded"), RateLimitedError, "rate limited"),
        (sm.error("ValidationError", "1 validation error detected"), InvalidRequestError, "rejected"),
        (sm.error("ServiceUnavailable", "try later"), UpstreamUnavailableError, "unavailable"),
        (sm.error("InternalDependencyException", "dependency"), UpstreamUnavailableError, "unavailable"),
    ],
)
def test_errors_are_mapped(
    sagemaker_mock: SageMakerMock, gateway: Gateway, reply: sm.Reply, expected: type, text: str
) -> None:
    gateway.retry = RetryPolicy(0)
    sagemaker_mock.script(sm.INVOKE, reply)
    with pytest.raises(expected, match=text) as info:
        gateway.chat(MODEL, HELLO)
    assert info.value.provider == "sagemaker"
    assert "hello there" not in info.value.message


def test_unknown_endpoint_names_the_model(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    sagemaker_mock.endpoints = {"llama-3-8b-instruct"}
    with pytest.raises(UnknownModelError, match=r"sagemaker\.nope") as info:
        gateway.chat("sagemaker.nope", HELLO)
    assert info.value.field == "model"
    with pytest.raises(UnknownModelError):
        gateway.chat_stream("sagemaker.nope", HELLO)


def test_throttling_is_retried_by_the_gateway(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    sagemaker_mock.script(sm.INVOKE, sm.error("ThrottlingException", "Rate exceeded"))
    assert gateway.chat(MODEL, HELLO).choices[0].text == "echo: hello there"
    assert len(sagemaker_mock.calls()) == 2


def test_not_a_chat_completion_is_an_upstream_error(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    gateway.retry = RetryPolicy(0)
    sagemaker_mock.script(sm.INVOKE, {"generated_text": "a raw TGI answer"})
    with pytest.raises(InvalidUpstreamResponseError, match="Messages API"):
        gateway.chat(MODEL, HELLO)


def test_deadline_ends_a_trickling_stream(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    parts = sm.sse_parts("one two three four five six seven eight", piece=300)
    sagemaker_mock.script(sm.STREAM, sm.Reply(parts=parts, part_delay=0.4))
    gateway.provider("sagemaker")  # the client is built outside the deadline being measured
    started = time.monotonic()
    _route, deltas = gateway.chat_stream(MODEL, HELLO, deadline=gateway.new_deadline(1.5))
    assert next(deltas).text == "one"  # the first part arrived in time
    with pytest.raises(UpstreamTimeoutError, match="llama-3-8b-instruct"):
        list(deltas)
    assert time.monotonic() - started < 2.3  # at the deadline, not when the stream would end (2 s)


def test_deadline_bounds_a_slow_endpoint(sagemaker_mock: SageMakerMock, gateway: Gateway) -> None:
    gateway.retry = RetryPolicy(0)
    sagemaker_mock.script(sm.INVOKE, sm.Reply(body=sm.completion("late"), delay=5.0))
    with pytest.raises(UpstreamTimeoutError, match="llama-3-8b-instruct"):
        gateway.chat(MODEL, HELLO, deadline=gateway.new_deadline(0.5))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"tools": [Tool("f", {"type": "object"})]}, "tools"),
        ({"sampling": Sampling(logprobs=True)}, "logprobs"),
        ({"sampling": Sampling(user="u1")}, "user"),
    ],
)
def test_unsupported_features_are_refused_by_name(
    sagemaker_mock: SageMakerMock, gateway: Gateway, kwargs: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidRequestError) as info:
        gateway.chat(MODEL, HELLO, **kwargs)
    assert info.value.field == field and MODEL in info.value.message
    image = Message("user", (ImagePart("image/png", b"\x89PNG\r\n\x1a\n"),))
    with pytest.raises(InvalidRequestError, match="images"):
        gateway.chat(MODEL, [image])
    with pytest.raises(InvalidRequestError, match="embeddings"):
        gateway.embed(MODEL, ["x"])
    assert sagemaker_mock.calls() == []


def test_sse_lines_handle_a_last_line_without_newline() -> None:
    lines = SseLines()
    assert list(lines.feed(b'data: {"a": 1}\n\ndata: {"b"')) == [{"a": 1}]
    assert list(lines.feed(b": 2}")) == []
    assert list(lines.finish()) == [{"b": 2}]


def test_package_exports_the_provider_lazily_and_the_rest_of_the_interface(
    sagemaker_mock: SageMakerMock, gateway: Gateway
) -> None:
    import lib.providers.sagemaker as package
    from lib.providers.images import ImageRequest

    assert package.SageMakerProvider is SageMakerProvider
    with pytest.raises(AttributeError):
        _ = package.NoSuchThing
    provider = SageMakerProvider(gateway.settings.model_copy(update={"default_chat_model": MODEL}))
    deadline = gateway.new_deadline()
    assert [m.id for m in provider.list_models(deadline)] == [MODEL]
    with pytest.raises(InvalidRequestError, match="embeddings"):
        provider.embed(sm_embed_request(), deadline)
    with pytest.raises(InvalidRequestError, match="images"):
        provider.generate_images(ImageRequest("llama-3-8b-instruct", "a fox"), deadline)
    with pytest.raises(InvalidRequestError, match="n must be between 1 and 16 for SageMaker endpoints"):
        gateway.chat(MODEL, HELLO, n=17)
    provider.close()


def sm_embed_request() -> Any:
    from lib.providers.base import EmbedRequest

    return EmbedRequest("llama-3-8b-instruct", ["x"])
