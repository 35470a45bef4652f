"""OpenAI image generation (``gpt-image-1``, ``dall-e-3``) through the official SDK's
``images.generate``, and what each model accepts.

``dall-e-3`` is asked for ``response_format: b64_json`` (its default is a URL the service would
have to fetch); ``gpt-image-1`` always answers base64 and refuses ``response_format``. A prompt the
moderation refuses (``content_policy_violation``, ``moderation_blocked``) is ``ContentPolicyError``.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import TYPE_CHECKING, Any

import openai

from lib.errors import ContentPolicyError, InvalidRequestError, InvalidUpstreamResponseError
from lib.providers.base import Usage
from lib.providers.deadline import Deadline
from lib.providers.images import GeneratedImage, ImageModel, ImageRequest, ImageResult

if TYPE_CHECKING:
    from lib.providers.openai.provider import OpenAIProvider

NAME = "openai"
_BLOCKED_CODES = {"content_policy_violation", "moderation_blocked"}

GPT_IMAGE = ImageModel(
    ("1024x1024", "1536x1024", "1024x1536", "auto"),
    max_n=10,
    max_prompt=32000,
    qualities=("low", "medium", "high", "auto"),
    usd_per_image=0.042,
)
DALL_E_3 = ImageModel(
    ("1024x1024", "1792x1024", "1024x1792"),
    max_prompt=4000,
    qualities=("standard", "hd"),
    styles=("vivid", "natural"),
    usd_per_image=0.04,
)


def image_model(model_id: str) -> ImageModel | None:
    if model_id.startswith("gpt-image-1"):
        return GPT_IMAGE
    if model_id.startswith("dall-e-3"):
        return DALL_E_3
    return None


def _params(request: ImageRequest) -> dict[str, Any]:
    params: dict[str, Any] = {"model": request.model, "prompt": request.prompt, "n": request.n}
    if request.size:
        params["size"] = request.size
    if request.quality:
        params["quality"] = request.quality
    if request.style:
        params["style"] = request.style
    if not request.model.startswith("gpt-image-1"):
        params["response_format"] = "b64_json"
    return params


def _decode(data: str | None) -> bytes:
    return base64.b64decode(data or "", validate=True)


def generate(provider: OpenAIProvider, request: ImageRequest, deadline: Deadline) -> ImageResult:
    model = request.model
    if image_model(model) is None:
        raise InvalidRequestError(f"model {model} does not generate images", field="model", provider=NAME)
    headers = provider._headers(request.api_key)
    params = _params(request)
    started = time.monotonic()
    try:
        answer = provider._call(
            model,
            lambda: provider.client.images.generate(
                **params, extra_headers=headers, timeout=deadline.timeout()
            ),
            deadline,
        )
    except InvalidRequestError as exc:
        cause = exc.__cause__
        body = cause.body if isinstance(cause, openai.APIStatusError) else None
        err = body.get("error", body) if isinstance(body, dict) else None
        if isinstance(err, dict) and err.get("code") in _BLOCKED_CODES:
            reason = str(err.get("message") or err.get("code"))[:300]
            message = f"the safety system of model {model} refused this request: {reason}"
            raise ContentPolicyError(message, provider=NAME, model=model) from None
        raise
    try:
        images = [
            GeneratedImage(_decode(item.b64_json), revised_prompt=item.revised_prompt)
            for item in answer.data or ()
        ]
        if not images or not all(i.data for i in images):
            raise ValueError("no image data")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidUpstreamResponseError(
            f"OpenAI answered no usable image for model {model}", provider=NAME, model=model
        ) from exc
    usage = answer.usage
    tokens = Usage(usage.input_tokens, usage.output_tokens) if usage is not None else Usage()
    return ImageResult(model, NAME, images, tokens, time.monotonic() - started)
