"""Image generation through the running service (gunicorn on a loopback port): the official openai
SDK's ``images.generate`` against ``/v1`` for OpenAI and Bedrock image models (loopback stand-ins
answer with real PNGs, decoded here with Pillow), refusals with their statuses, and native ``/images``."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import httpx2
import openai
import pytest
from PIL import Image

from tests.support import bedrock_mock as bm
from tests.support import image_upstreams as iu
from tests.support.openai_mock import OpenAIMock
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "images-e2e-key"
NOVA = "bedrock.amazon.nova-canvas-v1:0"


@pytest.fixture(scope="module")
def mocks() -> Iterator[tuple[bm.BedrockMock, OpenAIMock]]:
    with bm.BedrockMock() as bedrock, OpenAIMock() as oai:
        yield bedrock, oai


@pytest.fixture(scope="module")
def service(mocks: tuple[bm.BedrockMock, OpenAIMock]) -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "MAX_RETRIES": "0",  # the refusals below are answered as they come
        "AWS_ACCESS_KEY_ID": "images-e2e",
        "AWS_SECRET_ACCESS_KEY": "images-e2e-secret",
        "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": mocks[0].endpoint_url,
        "OPENAI_API_KEY": "sk-x",
        "OPENAI_BASE_URL": mocks[1].base_url,
    }
    with Service(env, workers=1) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> openai.OpenAI:
    for m in mocks:
        m.reset()
    mocks[0].on(bm.INVOKE, iu.bedrock_invoke)
    mocks[1].on(iu.IMAGES, iu.openai_images)
    return openai.OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0)


def size_of(b64: str | None) -> tuple[int, int]:
    assert b64 is not None
    with Image.open(io.BytesIO(base64.b64decode(b64))) as img:
        img.load()
        assert img.format == "PNG"
        return img.size


def test_sdk_images_generate_on_openai_and_bedrock(sdk: openai.OpenAI) -> None:
    dalle = sdk.images.generate(
        model="dall-e-3", prompt="a lighthouse", size="1024x1792", response_format="b64_json"
    )
    assert size_of(dalle.data[0].b64_json) == (1024, 1792)
    assert dalle.data[0].revised_prompt == "A detailed picture: a lighthouse"
    gpt = sdk.images.generate(model="gpt-image-1", prompt="a lighthouse", n=2, quality="low")
    assert [size_of(d.b64_json) for d in gpt.data] == [(1024, 1024)] * 2
    assert gpt.usage is not None and gpt.usage.output_tokens == 544
    nova = sdk.images.generate(
        model=NOVA,
        prompt="a lighthouse",
        n=2,
        size="1280x720",
        extra_body={"seed": 3, "negative_prompt": "fog"},
    )
    assert [size_of(d.b64_json) for d in nova.data] == [(1280, 720)] * 2


def test_sdk_refusals(sdk: openai.OpenAI, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    with pytest.raises(openai.BadRequestError) as url:
        sdk.images.generate(model="dall-e-3", prompt="x", response_format="url")
    assert url.value.param == "response_format" and "stores no images" in url.value.message
    with pytest.raises(openai.BadRequestError) as size:
        sdk.images.generate(model="dall-e-3", prompt="x", size="512x512")
    assert size.value.param == "size" and "1792x1024" in size.value.message
    with pytest.raises(openai.BadRequestError) as blocked:
        sdk.images.generate(model=NOVA, prompt=f"a {iu.BLOCKED_WORD}")
    assert blocked.value.code == "content_policy" and "content filters" in blocked.value.message
    mocks[0].script(bm.INVOKE, bm.error("ThrottlingException", "slow down", retry_after="2"))
    with pytest.raises(openai.RateLimitError) as throttled:
        sdk.images.generate(model=NOVA, prompt="x")
    assert throttled.value.response.headers["Retry-After"] == "2"
    with pytest.raises(openai.InternalServerError) as local:
        sdk.images.generate(model="local", prompt="x")
    assert local.value.status_code == 503 and local.value.code == "provider_not_installed"
    with pytest.raises(openai.BadRequestError) as extra:
        sdk.images.generate(model=NOVA, prompt="x", extra_body={"background": "transparent"})
    assert extra.value.param == "background"


def test_native_images_route(service: Service, sdk: openai.OpenAI) -> None:
    body = {"model": "bedrock.stability.sd3-5-large-v1:0", "prompt": "a fox", "size": "1216x832", "seed": 11}
    resp = httpx2.post(service.url + "/images", json=body, headers={"Authorization": KEY}, timeout=10)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["provider"] == "bedrock" and out["images"][0]["seed"] == 11
    assert out["images"][0]["media_type"] == "image/png"
    assert size_of(out["images"][0]["b64_json"]) == (1216, 832)
    bad = httpx2.post(
        service.url + "/images", json={"model": NOVA, "prompt": ""}, headers={"Authorization": KEY}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "prompt"
    anon = httpx2.post(service.url + "/images", json=body)
    assert anon.status_code == 401
