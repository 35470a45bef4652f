"""Image routes: ``POST /v1/images/generations`` (OpenAI's shape; the official SDK's
``images.generate`` works against it) and the native ``POST /images``. Both answer base64 images
only: the service stores nothing, so ``response_format: url`` is refused (400)."""

from __future__ import annotations

import base64
import time

from flask import Blueprint, Response, g, jsonify

from lib.errors import InvalidRequestError
from lib.providers.images import ImageRequest, ImageResult
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.images_schemas import ImageGenerationBody, ImagesBody, ImagesOut, OAIImagesOut

bp = Blueprint("images", __name__)


def _generate(body: ImagesBody) -> ImageResult:
    g.model = body.model
    request = ImageRequest(
        model="",
        prompt=body.prompt,
        n=body.n,
        size=body.size,
        quality=body.quality,
        style=body.style,
        seed=body.seed,
        negative_prompt=body.negative_prompt,
    )
    return services().gateway.generate_images(body.model, request, deadline=g.deadline)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@bp.post("/v1/images/generations")
@require_auth
@documented(
    "OpenAI-compatible image generation (base64 images only)",
    body=ImageGenerationBody,
    responses={200: OAIImagesOut},
    errors=UPSTREAM_ERRORS,
    tags=("openai-compatible",),
)
def generations() -> Response:
    body = parse_body(ImageGenerationBody)
    if body.response_format == "url":
        raise InvalidRequestError(
            "response_format url is not supported: this service stores no images; use b64_json",
            field="response_format",
        )
    result = _generate(body)
    out: dict[str, object] = {
        "created": int(time.time()),
        "data": [
            {
                "b64_json": _b64(image.data),
                **({"revised_prompt": image.revised_prompt} if image.revised_prompt else {}),
            }
            for image in result.images
        ],
    }
    if result.usage.total_tokens:
        out["usage"] = {
            "input_tokens": result.usage.prompt_tokens,
            "output_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        }
    return jsonify(out)


@bp.post("/images")
@require_auth
@documented(
    "Generate images with any routed image model (base64)",
    body=ImagesBody,
    responses={200: ImagesOut},
    errors=UPSTREAM_ERRORS,
    tags=("models",),
)
def images() -> Response:
    result = _generate(parse_body(ImagesBody))
    return jsonify(
        {
            "model": result.model,
            "provider": result.provider,
            "images": [
                {
                    "index": i,
                    "b64_json": _b64(image.data),
                    "media_type": image.media_type,
                    "seed": image.seed,
                    "revised_prompt": image.revised_prompt,
                }
                for i, image in enumerate(result.images)
            ],
            "usage": result.usage.as_dict(),
            "latency_ms": round(result.latency_s * 1000, 1),
        }
    )
