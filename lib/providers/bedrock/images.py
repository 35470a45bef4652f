"""Image generation on Bedrock through ``invoke_model``, in each model family's own request format
(pure mapping, no I/O):

- Amazon Titan Image Generator v2 and Nova Canvas: ``taskType: TEXT_IMAGE`` with
  ``textToImageParams`` (``text``, ``negativeText``, Nova's ``style``) and ``imageGenerationConfig``
  (``numberOfImages``, ``quality``, ``width``, ``height``, ``seed``); answer ``{"images": [b64]}``.
- Stability SDXL 1.0: ``text_prompts`` (the negative prompt as a weight -1 prompt), ``cfg_scale``,
  ``steps``, ``seed``, ``width``, ``height``, ``style_preset``; answer ``artifacts`` with a
  ``finishReason`` each.
- Stability SD3.5 Large: ``prompt``, ``mode: text-to-image``, ``aspect_ratio``, ``output_format``,
  ``seed``, ``negative_prompt``; answer ``images`` with ``finish_reasons`` and ``seeds``.

Safety filters: Titan/Nova refuse a blocked prompt with a ``ValidationException`` about content
filters; Stability answers ``CONTENT_FILTERED`` / ``Filter reason: ...``. All become
``ContentPolicyError`` (400 ``content_policy``) with the provider's reason.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from botocore import exceptions as bce

from lib.errors import AIProxyError, ContentPolicyError, InvalidUpstreamResponseError
from lib.providers.bedrock.errors import PROVIDER, safe_upstream_message, translate
from lib.providers.bedrock.models import base_model_id
from lib.providers.images import GeneratedImage, ImageModel, ImageRequest, dimensions

ImageFamily = Literal["amazon", "sdxl", "sd3"]

_TITAN_SIZES = (
    "1024x1024",
    "768x768",
    "512x512",
    "768x1152",
    "1152x768",
    "1280x768",
    "768x1280",
    "896x1152",
    "1152x896",
    "1408x768",
    "768x1408",
)
_NOVA_SIZES = (
    "1024x1024",
    "2048x2048",
    "1280x720",
    "720x1280",
    "1152x896",
    "896x1152",
    "1216x832",
    "832x1216",
    "1536x640",
    "640x1536",
    "512x512",
)
_NOVA_STYLES = (
    "3D_ANIMATED_FAMILY_FILM",
    "DESIGN_SKETCH",
    "FLAT_VECTOR_ILLUSTRATION",
    "GRAPHIC_NOVEL_ILLUSTRATION",
    "MAXIMALISM",
    "MIDCENTURY_RETRO",
    "PHOTOREALISM",
    "SOFT_DIGITAL_PAINTING",
)
_SDXL_SIZES = (
    "1024x1024",
    "1152x896",
    "896x1152",
    "1216x832",
    "832x1216",
    "1344x768",
    "768x1344",
    "1536x640",
    "640x1536",
)
_SDXL_STYLES = (
    "3d-model",
    "analog-film",
    "anime",
    "cinematic",
    "comic-book",
    "digital-art",
    "enhance",
    "fantasy-art",
    "isometric",
    "line-art",
    "low-poly",
    "modeling-compound",
    "neon-punk",
    "origami",
    "photographic",
    "pixel-art",
    "tile-texture",
)
#: SD3.5 takes an aspect ratio and makes about one megapixel; these are its sizes.
_SD3_RATIOS: dict[str, str] = {
    "1024x1024": "1:1",
    "1344x768": "16:9",
    "768x1344": "9:16",
    "1536x640": "21:9",
    "640x1536": "9:21",
    "1216x832": "3:2",
    "832x1216": "2:3",
    "1088x896": "5:4",
    "896x1088": "4:5",
}

#: Base model id -> (request family, what it accepts). List prices per image (us-east-1).
IMAGE_MODELS: dict[str, tuple[ImageFamily, ImageModel]] = {
    "amazon.titan-image-generator-v2:0": (
        "amazon",
        ImageModel(
            _TITAN_SIZES,
            max_n=5,
            max_prompt=512,
            qualities=("standard", "premium"),
            max_seed=2147483646,
            negative_prompt=True,
            usd_per_image=0.01,
        ),
    ),
    "amazon.nova-canvas-v1:0": (
        "amazon",
        ImageModel(
            _NOVA_SIZES,
            max_n=5,
            max_prompt=1024,
            qualities=("standard", "premium"),
            styles=_NOVA_STYLES,
            max_seed=858993459,
            negative_prompt=True,
            usd_per_image=0.04,
        ),
    ),
    "stability.stable-diffusion-xl-v1": (
        "sdxl",
        ImageModel(
            _SDXL_SIZES,
            max_prompt=2000,
            styles=_SDXL_STYLES,
            max_seed=4294967295,
            negative_prompt=True,
            usd_per_image=0.04,
        ),
    ),
    "stability.sd3-5-large-v1:0": (
        "sd3",
        ImageModel(
            tuple(_SD3_RATIOS),
            max_prompt=10000,
            max_seed=4294967294,
            negative_prompt=True,
            usd_per_image=0.08,
        ),
    ),
}

_BLOCKED = re.compile(r"content filter|blocked|responsible ai|safety|moderat", re.IGNORECASE)


def image_model(model_id: str) -> ImageModel | None:
    """What ``model_id`` (a foundation-model id or a cross-region profile of one) accepts."""
    found = IMAGE_MODELS.get(base_model_id(model_id))
    return found[1] if found is not None else None


def build_body(request: ImageRequest) -> dict[str, Any]:
    """The ``invoke_model`` body of ``request`` in its model family's format (request checked)."""
    family = IMAGE_MODELS[base_model_id(request.model)][0]
    width, height = dimensions(request.size or "1024x1024")
    if family == "amazon":
        params: dict[str, Any] = {"text": request.prompt}
        if request.negative_prompt:
            params["negativeText"] = request.negative_prompt
        if request.style:
            params["style"] = request.style
        config: dict[str, Any] = {"numberOfImages": request.n, "width": width, "height": height}
        config["quality"] = request.quality or "standard"
        if request.seed is not None:
            config["seed"] = request.seed
        return {"taskType": "TEXT_IMAGE", "textToImageParams": params, "imageGenerationConfig": config}
    if family == "sdxl":
        prompts: list[dict[str, Any]] = [{"text": request.prompt, "weight": 1.0}]
        if request.negative_prompt:
            prompts.append({"text": request.negative_prompt, "weight": -1.0})
        body: dict[str, Any] = {
            "text_prompts": prompts,
            "cfg_scale": 7,
            "steps": 30,
            "samples": 1,
            "width": width,
            "height": height,
        }
        if request.style:
            body["style_preset"] = request.style
    else:
        body = {
            "prompt": request.prompt,
            "mode": "text-to-image",
            "aspect_ratio": _SD3_RATIOS[request.size or "1024x1024"],
            "output_format": "png",
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
    if request.seed is not None:
        body["seed"] = request.seed
    return body


def _decode(data: Any) -> bytes:
    if not isinstance(data, str) or not data:
        raise ValueError("image is not base64 text")
    return base64.b64decode(data, validate=True)


def parse_answer(payload: bytes, model: str) -> list[GeneratedImage]:
    """The images of an ``invoke_model`` answer; a safety-filter verdict is ``ContentPolicyError``."""
    family = IMAGE_MODELS[base_model_id(model)][0]
    try:
        data = json.loads(payload)
        if not isinstance(data, Mapping):
            raise TypeError("answer is not an object")
        if family == "sdxl":
            images = []
            for artifact in data["artifacts"]:
                reason = str(artifact.get("finishReason") or "SUCCESS")
                if reason == "CONTENT_FILTERED":
                    raise _blocked(model, "the image was filtered (CONTENT_FILTERED)")
                if reason != "SUCCESS":
                    raise ValueError(f"finishReason {reason}")
                images.append(GeneratedImage(_decode(artifact["base64"]), seed=_seed(artifact.get("seed"))))
            return _some(images)
        if family == "sd3":
            reasons = data.get("finish_reasons") or []
            filtered = [str(r) for r in reasons if r]
            if filtered:
                raise _blocked(model, "; ".join(filtered))
            seeds = data.get("seeds") or []
            return _some(
                [
                    GeneratedImage(_decode(b64), seed=_seed(seeds[i] if i < len(seeds) else None))
                    for i, b64 in enumerate(data["images"])
                ]
            )
        error = data.get("error")
        if error:
            if _BLOCKED.search(str(error)):
                raise _blocked(model, safe_upstream_message(str(error)))
            raise ValueError("the answer carries an error")
        return _some([GeneratedImage(_decode(b64)) for b64 in data["images"]])
    except AIProxyError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, binascii.Error) as exc:
        raise InvalidUpstreamResponseError(
            f"Bedrock image model {model} answered no usable image", provider=PROVIDER, model=model
        ) from exc


def _some(images: list[GeneratedImage]) -> list[GeneratedImage]:
    if not images:
        raise ValueError("no images")
    return images


def _seed(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _blocked(model: str, reason: str) -> ContentPolicyError:
    return ContentPolicyError(
        f"the safety filter of model {model} refused this request: {reason}", provider=PROVIDER, model=model
    )


def translate_image_error(exc: BaseException, model: str) -> AIProxyError:
    """A ``ValidationException`` about content filters is the safety filter's verdict; the rest as
    any Bedrock failure."""
    if isinstance(exc, bce.ClientError):
        error = (exc.response or {}).get("Error") or {}
        message = str(error.get("Message") or "")
        if str(error.get("Code") or "").lower() == "validationexception" and _BLOCKED.search(message):
            return _blocked(model, safe_upstream_message(message))
    return translate(exc, model)
