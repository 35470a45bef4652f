"""Request and response models of the image routes (``POST /v1/images/generations``, ``POST /images``).

Only what the checks need is validated here (types, ranges); which sizes, counts, qualities and
styles a model accepts is decided per model before the upstream call (``lib.providers.images``).
Unknown fields are refused by name: an option the service would not pass on is never dropped
silently.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from src.schemas import Int

#: The longest prompt any image model accepts (gpt-image-1); each model's own limit is checked too.
MAX_IMAGE_PROMPT = 32000


class ImagesBody(BaseModel):
    """The native ``POST /images`` body."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        description="An image model: gpt-image-1, dall-e-3, bedrock.amazon.titan-image-generator-v2:0, "
        "bedrock.amazon.nova-canvas-v1:0, bedrock.stability.stable-diffusion-xl-v1, "
        "bedrock.stability.sd3-5-large-v1:0 (or an alias)."
    )
    prompt: str = Field(min_length=1, max_length=MAX_IMAGE_PROMPT)
    n: Int = Field(1, ge=1, le=10, description="Images to make (each model's maximum is checked).")
    size: str | None = Field(None, description="WIDTHxHEIGHT; the model's first size when omitted.")
    quality: str | None = None
    style: str | None = None
    seed: Int | None = Field(None, ge=0, description="Bedrock models only (extension).")
    negative_prompt: str | None = Field(
        None, min_length=1, max_length=10000, description="Bedrock models only (extension)."
    )


class ImageGenerationBody(ImagesBody):
    """OpenAI's ``images.generate`` body plus the ``seed``/``negative_prompt`` extensions."""

    response_format: Literal["b64_json", "url"] | None = Field(
        None, description="b64_json only: the service stores nothing, so it has no URL to give."
    )


class ImageOut(BaseModel):
    index: int
    b64_json: str
    media_type: str
    seed: int | None = None
    revised_prompt: str | None = None


class ImagesOut(BaseModel):
    model: str
    provider: str
    images: list[ImageOut]
    usage: dict[str, int]
    latency_ms: float


class OAIImage(BaseModel):
    b64_json: str
    revised_prompt: str | None = None


class OAIImagesOut(BaseModel):
    created: int
    data: list[OAIImage]
    usage: dict[str, int] | None = None
