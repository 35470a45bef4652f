"""Image generation through the gateway: each Bedrock image model in its own request format (real
boto3 against the loopback Bedrock stand-in), OpenAI's ``dall-e-3`` and ``gpt-image-1`` through the
official SDK against the loopback OpenAI stand-in; per-model checks before any call, safety-filter
refusals, throttling, and the providers without image models. Every image is decoded with Pillow."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image

from lib.errors import (
    ContentPolicyError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    ProviderNotInstalledError,
    RateLimitedError,
    UpstreamTimeoutError,
)
from lib.providers.gateway import Gateway, RetryPolicy
from lib.providers.images import ImageRequest, ImageResult
from tests.providers.bedrock.conftest import aws_env, bedrock_settings
from tests.support import bedrock_mock as bm
from tests.support import image_upstreams as iu
from tests.support.openai_mock import OpenAIMock

__all__ = ["aws_env"]
TITAN = "bedrock.amazon.titan-image-generator-v2:0"
NOVA = "bedrock.amazon.nova-canvas-v1:0"
SDXL = "bedrock.stability.stable-diffusion-xl-v1"
SD3 = "bedrock.stability.sd3-5-large-v1:0"


@pytest.fixture
def mocks(aws_env: None) -> Iterator[tuple[bm.BedrockMock, OpenAIMock]]:
    with bm.BedrockMock() as bedrock, OpenAIMock() as oai:
        bedrock.on(bm.INVOKE, iu.bedrock_invoke)
        oai.on(iu.IMAGES, iu.openai_images)
        yield bedrock, oai


@pytest.fixture
def gateway(mocks: tuple[bm.BedrockMock, OpenAIMock]) -> Gateway:
    bedrock, oai = mocks
    settings = bedrock_settings(bedrock.endpoint_url, openai_api_key="sk-x", openai_base_url=oai.base_url)
    return Gateway(settings, sleep=lambda _s: None)


def make(gateway: Gateway, model: str, prompt: str = "a red fox in snow", **kw: Any) -> ImageResult:
    return gateway.generate_images(model, ImageRequest("", prompt, **kw))


def decoded(result: ImageResult) -> list[Image.Image]:
    images = []
    for image in result.images:
        assert image.data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(image.data)) as img:
            img.load()  # decompresses every row: a broken IDAT or CRC fails here
            images.append(img)
    return images


def test_titan_text_image_body_and_images(gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    result = make(
        gateway, TITAN, n=3, size="768x1152", quality="premium", seed=5, negative_prompt="blurry, text"
    )
    assert [img.size for img in decoded(result)] == [(768, 1152)] * 3
    assert result.usage.images == 3  # what the ledger prices per image
    assert result.provider == "bedrock" and result.model == "amazon.titan-image-generator-v2:0"
    (call,) = mocks[0].calls(bm.INVOKE)
    assert call.model_id == "amazon.titan-image-generator-v2:0"
    assert call.json == {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a red fox in snow", "negativeText": "blurry, text"},
        "imageGenerationConfig": {
            "numberOfImages": 3,
            "width": 768,
            "height": 1152,
            "quality": "premium",
            "seed": 5,
        },
    }


def test_nova_canvas_style_and_default_size(
    gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]
) -> None:
    result = make(gateway, "bedrock.us.amazon.nova-canvas-v1:0", style="PHOTOREALISM")
    assert [img.size for img in decoded(result)] == [(1024, 1024)]
    call = mocks[0].calls(bm.INVOKE)[0]
    assert call.json["textToImageParams"]["style"] == "PHOTOREALISM"
    assert call.json["imageGenerationConfig"]["quality"] == "standard"


def test_sdxl_text_prompts_and_artifacts(gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    result = make(gateway, SDXL, size="1344x768", style="pixel-art", seed=99, negative_prompt="people")
    assert [img.size for img in decoded(result)] == [(1344, 768)]
    assert result.images[0].seed == 99
    body = mocks[0].calls(bm.INVOKE)[0].json
    assert body["text_prompts"] == [
        {"text": "a red fox in snow", "weight": 1.0},
        {"text": "people", "weight": -1.0},
    ]
    assert (body["width"], body["height"], body["style_preset"], body["seed"]) == (1344, 768, "pixel-art", 99)


def test_sd35_aspect_ratio_and_png(gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    result = make(gateway, SD3, size="768x1344", negative_prompt="fog")
    assert [img.size for img in decoded(result)] == [(768, 1344)]
    assert result.images[0].seed == 7
    body = mocks[0].calls(bm.INVOKE)[0].json
    assert body == {
        "prompt": "a red fox in snow",
        "mode": "text-to-image",
        "aspect_ratio": "9:16",
        "output_format": "png",
        "negative_prompt": "fog",
    }


@pytest.mark.parametrize("model", [TITAN, NOVA, SDXL, SD3, "dall-e-3", "gpt-image-1"])
def test_safety_filter_is_content_policy_with_the_reason(gateway: Gateway, model: str) -> None:
    with pytest.raises(ContentPolicyError) as info:
        make(gateway, model, f"a {iu.BLOCKED_WORD} please")
    assert info.value.kind == "content_policy"
    assert "refused" in info.value.message
    assert any(
        word in info.value.message for word in ("content filters", "FILTERED", "Filter reason", "safety")
    )


def test_throttling_is_retried_then_rate_limited(
    gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]
) -> None:
    bedrock = mocks[0]
    bedrock.script(bm.INVOKE, bm.error("ThrottlingException", "slow down"))
    assert len(make(gateway, NOVA).images) == 1
    gateway.retry = RetryPolicy(0)
    bedrock.script(bm.INVOKE, bm.error("ThrottlingException", "slow down"))
    with pytest.raises(RateLimitedError):
        make(gateway, NOVA)


def test_unusable_answer_and_deadline(gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    gateway.retry = RetryPolicy(0)
    mocks[0].script(bm.INVOKE, {"images": ["not base64!"]})
    with pytest.raises(InvalidUpstreamResponseError, match="no usable image"):
        make(gateway, TITAN)
    mocks[0].script(bm.INVOKE, bm.Reply(body={"images": []}, delay=3.0))
    with pytest.raises(UpstreamTimeoutError):
        gateway.generate_images(TITAN, ImageRequest("", "x"), deadline=gateway.new_deadline(0.3))


@pytest.mark.parametrize(
    ("model", "kw", "field", "allowed"),
    [
        (TITAN, {"size": "1000x1000"}, "size", "1024x1024, 768x768"),
        (TITAN, {"n": 6}, "n", "1 to 5"),
        (SDXL, {"n": 2}, "n", "must be 1"),
        (NOVA, {"quality": "hd"}, "quality", "standard, premium"),
        (TITAN, {"style": "anime"}, "style", "not supported"),
        (NOVA, {"seed": 900000000}, "seed", "0 to 858993459"),
        ("dall-e-3", {"seed": 1}, "seed", "not supported"),
        ("dall-e-3", {"negative_prompt": "x"}, "negative_prompt", "not supported"),
        ("dall-e-3", {"style": "anime"}, "style", "vivid, natural"),
        ("gpt-image-1", {"size": "1792x1024"}, "size", "1536x1024"),
        (TITAN, {"prompt": "x" * 513}, "prompt", "512"),
        ("gpt-4o", {}, "model", "does not generate images"),
        ("sagemaker.llama-3-8b", {}, "model", "does not generate images"),
    ],
)
def test_requests_a_model_would_refuse_are_400_before_any_call(
    gateway: Gateway,
    mocks: tuple[bm.BedrockMock, OpenAIMock],
    model: str,
    kw: dict[str, Any],
    field: str,
    allowed: str,
) -> None:
    prompt = kw.pop("prompt", "a fox")
    with pytest.raises(InvalidRequestError) as info:
        make(gateway, model, prompt, **kw)
    assert info.value.field == field and allowed in info.value.message
    assert mocks[0].requests == [] and mocks[1].requests == []


def test_local_has_no_image_model(gateway: Gateway) -> None:
    with pytest.raises(ProviderNotInstalledError, match="no image model"):
        make(gateway, "local")


def test_dall_e_3_asks_for_base64_and_keeps_the_revised_prompt(
    gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]
) -> None:
    result = make(gateway, "dall-e-3", size="1792x1024", quality="hd", style="natural")
    assert [img.size for img in decoded(result)] == [(1792, 1024)]
    assert result.images[0].revised_prompt == "A detailed picture: a red fox in snow"
    (call,) = mocks[1].calls(iu.IMAGES)
    assert call.json == {
        "model": "dall-e-3",
        "prompt": "a red fox in snow",
        "n": 1,
        "size": "1792x1024",
        "quality": "hd",
        "style": "natural",
        "response_format": "b64_json",
    }


def test_gpt_image_1_counts_tokens(gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]) -> None:
    result = make(gateway, "gpt-image-1", n=2, size="1024x1536", quality="low")
    assert [img.size for img in decoded(result)] == [(1024, 1536)] * 2
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 544)
    assert "response_format" not in mocks[1].calls(iu.IMAGES)[0].json


class Rows:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def record(self, row: dict[str, Any]) -> None:
        self.rows.append(row)


def test_ledger_prices_images_per_image() -> None:
    from lib.ledger.recorder import CallContext, LedgerRecorder
    from lib.providers.base import Usage
    from lib.providers.gateway import UpstreamCall

    rows = Rows()
    recorder = LedgerRecorder(rows, lambda: CallContext("key1", "/images", "r1"))  # type: ignore[arg-type]
    for model, usage in ((NOVA, Usage(images=2)), ("gpt-image-1", Usage(12, 544, images=2))):
        recorder.observe_upstream(UpstreamCall("bedrock", model, "images", 1.0, usage, None))
    recorder.observe_upstream(UpstreamCall("bedrock", "sagemaker.x", "images", 1.0, Usage(images=1), None))
    assert [r["cost_usd"] for r in rows.rows] == [pytest.approx(0.08), pytest.approx(0.084), None]


@pytest.mark.parametrize(
    ("model", "answer", "expected"),
    [
        (
            NOVA,
            {"images": [], "error": "The generated image has been blocked by our content filters."},
            ContentPolicyError,
        ),
        (TITAN, {"images": [iu.b64_png(8, 8)], "error": "internal failure"}, InvalidUpstreamResponseError),
        (
            SDXL,
            {"result": "success", "artifacts": [{"base64": "", "finishReason": "ERROR"}]},
            InvalidUpstreamResponseError,
        ),
        (SD3, {"seeds": [1], "finish_reasons": [None], "images": []}, InvalidUpstreamResponseError),
        (SD3, ["not", "an", "object"], InvalidUpstreamResponseError),
    ],
)
def test_answers_without_usable_images(
    gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock], model: str, answer: Any, expected: type
) -> None:
    gateway.retry = RetryPolicy(0)
    mocks[0].script(bm.INVOKE, bm.Reply(body=answer))
    with pytest.raises(expected):
        make(gateway, model)


def test_openai_other_refusals_and_url_answers(
    gateway: Gateway, mocks: tuple[bm.BedrockMock, OpenAIMock]
) -> None:
    from tests.support.openai_mock import error

    gateway.retry = RetryPolicy(0)
    mocks[1].script(iu.IMAGES, error(400, "Invalid size for this model.", code="invalid_value"))
    with pytest.raises(InvalidRequestError) as refused:
        make(gateway, "dall-e-3")
    assert not isinstance(refused.value, ContentPolicyError) and "Invalid size" in refused.value.message
    mocks[1].script(iu.IMAGES, {"created": 1, "data": [{"url": "https://example.invalid/a.png"}]})
    with pytest.raises(InvalidUpstreamResponseError, match="no usable image"):
        make(gateway, "dall-e-3")
