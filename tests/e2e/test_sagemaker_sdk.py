"""SageMaker endpoints through the running service (gunicorn on a loopback port) in front of the
loopback sagemaker-runtime stand-in, reached by the real boto3 client through
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``: the official openai SDK (plain, streamed, refusals), native
``/chat`` with an inference component, and ``/assessment`` in the web app's form shape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx2
import openai
import pytest

from tests.assessment.conftest import read
from tests.support import sagemaker_mock as sm
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "sagemaker-e2e-key"
LLAMA = "sagemaker.llama-3-8b-instruct"


@pytest.fixture(scope="module")
def mock() -> Iterator[sm.SageMakerMock]:
    with sm.SageMakerMock() as m:
        m.endpoints = {"llama-3-8b-instruct", "shared-gpu"}
        yield m


@pytest.fixture(scope="module")
def service(mock: sm.SageMakerMock) -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": mock.endpoint_url,
        "AWS_ACCESS_KEY_ID": "sagemaker-e2e",
        "AWS_SECRET_ACCESS_KEY": "sagemaker-e2e-secret",
        "AWS_REGION": "us-east-1",
        "MAX_RETRIES": "0",
    }
    with Service(env, workers=1) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, mock: sm.SageMakerMock) -> openai.OpenAI:
    mock.reset()
    mock.endpoints = {"llama-3-8b-instruct", "shared-gpu"}
    return openai.OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0)


def test_sdk_chat_and_stream(sdk: openai.OpenAI, mock: sm.SageMakerMock) -> None:
    out = sdk.chat.completions.create(
        model=LLAMA, messages=[{"role": "user", "content": "hi there"}], max_tokens=20, temperature=0.1
    )
    assert out.choices[0].message.content == "echo: hi there"
    assert out.usage is not None and out.usage.completion_tokens == 3
    stream = sdk.chat.completions.create(
        model=LLAMA,
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: stream me please"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert [r.operation for r in mock.calls()] == [sm.INVOKE, sm.STREAM]
    assert mock.calls()[0].json["max_tokens"] == 20


def test_sdk_errors(sdk: openai.OpenAI, mock: sm.SageMakerMock) -> None:
    with pytest.raises(openai.BadRequestError) as missing:
        sdk.chat.completions.create(model="sagemaker.gone", messages=[{"role": "user", "content": "x"}])
    assert missing.value.code == "unknown_model" and "sagemaker.gone" in missing.value.message
    mock.script(sm.INVOKE, sm.error("ThrottlingException", "Rate exceeded"))
    with pytest.raises(openai.RateLimitError):
        sdk.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "x"}])
    mock.script(sm.INVOKE, sm.error("ModelError", "Received server error (500)", OriginalStatusCode=500))
    with pytest.raises(openai.InternalServerError) as failed:
        sdk.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "x"}])
    assert failed.value.status_code == 502
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "x"}], logprobs=True)
    assert refused.value.param == "logprobs"


def test_stream_error_after_the_first_token_is_in_band(sdk: openai.OpenAI, mock: sm.SageMakerMock) -> None:
    first = b'data: {"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":null}]}\n\n'
    mock.script(sm.STREAM, sm.stream_error([first], "ModelStreamError", "container crashed"))
    stream = sdk.chat.completions.create(
        model=LLAMA, messages=[{"role": "user", "content": "x"}], stream=True
    )
    texts: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert "partial" in texts
    assert "ModelStreamError" in info.value.message


def test_native_chat_with_an_inference_component(
    service: Service, sdk: openai.OpenAI, mock: sm.SageMakerMock
) -> None:
    body = {"model": "sagemaker.shared-gpu.mistral-7b-ic", "messages": [{"role": "user", "content": "yo"}]}
    resp = httpx2.post(service.url + "/chat", json=body, headers={"Authorization": KEY}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.json()["reply"] == "echo: yo" and resp.json()["provider"] == "sagemaker"
    (call,) = mock.calls()
    assert (call.endpoint, call.component) == ("shared-gpu", "mistral-7b-ic")


def test_assessment_on_an_endpoint(service: Service, sdk: openai.OpenAI, mock: sm.SageMakerMock) -> None:
    form = {
        "code": read("u3l13_01.js"),
        "prompt": read("u3l13.txt"),
        "rubric": read("u3l13.csv"),
        "examples": json.dumps([]),
        "model": LLAMA,
        "num-responses": "2",
        "temperature": "0.2",
        "response-type": "json",
    }
    resp = httpx2.post(
        service.url + "/assessment",
        content=urlencode(form),
        headers={"Authorization": KEY, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["metadata"]["agent"] == "meta"
    assert data["metadata"]["usage"]["completion_tokens"] > 0
    assert len(mock.calls(sm.INVOKE)) == 2  # num-responses as parallel calls, no repair needed
    system = mock.calls()[0].json["messages"][0]["content"]
    assert "Respond with only a JSON value" in system
