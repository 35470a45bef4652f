"""Image generation for the loopback upstream stand-ins: real PNGs built with zlib/struct, Bedrock's
image models answered in their own formats through ``invoke`` (Titan Image Generator v2 and Nova
Canvas ``TEXT_IMAGE``, Stability SDXL ``text_prompts``/``artifacts``, SD3.5 ``prompt``/``images``),
and OpenAI's ``POST /v1/images/generations`` (``dall-e-3``, ``gpt-image-1``).

Install them on a running mock: ``bedrock.on(INVOKE, bedrock_invoke)`` (other invoke bodies, i.e.
embeddings, still get the mock's default answer) and ``openai.on(IMAGES, openai_images)``. A prompt
containing ``BLOCKED_WORD`` is refused the way each upstream's safety filter refuses it.
"""

from __future__ import annotations

import base64
import struct
import zlib
from typing import Any

from tests.support import bedrock_mock as bm
from tests.support import openai_mock as om

IMAGES = "/v1/images/generations"
BLOCKED_WORD = "forbidden-scene"
TITAN_BLOCKED = (
    "This request has been blocked by our content filters. Please adjust your text prompt to submit a new "
    "request."
)
SD3_SIZES = {"1:1": (1024, 1024), "16:9": (1344, 768), "9:16": (768, 1344), "3:2": (1216, 832)}


def png(width: int, height: int, rgb: tuple[int, int, int] = (10, 120, 200)) -> bytes:
    """A valid RGB PNG of one colour (signature, IHDR, zlib-compressed IDAT, IEND, CRCs)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def b64_png(width: int, height: int, index: int = 0) -> str:
    return base64.b64encode(png(width, height, (index * 40 % 256, 100, 200))).decode("ascii")


def bedrock_invoke(req: bm.Recorded) -> bm.Reply | dict[str, Any]:
    body = req.json if isinstance(req.json, dict) else {}
    if body.get("taskType") == "TEXT_IMAGE":
        if BLOCKED_WORD in body["textToImageParams"]["text"]:
            return bm.error("ValidationException", TITAN_BLOCKED)
        config = body["imageGenerationConfig"]
        size = (int(config["width"]), int(config["height"]))
        return {"images": [b64_png(*size, i) for i in range(int(config["numberOfImages"]))], "error": None}
    if "text_prompts" in body:
        if BLOCKED_WORD in body["text_prompts"][0]["text"]:
            artifact = {"seed": 1, "base64": "", "finishReason": "CONTENT_FILTERED"}
        else:
            size = (int(body["width"]), int(body["height"]))
            artifact = {
                "seed": int(body.get("seed", 42)),
                "base64": b64_png(*size),
                "finishReason": "SUCCESS",
            }
        return {"result": "success", "artifacts": [artifact]}
    if body.get("mode") == "text-to-image":
        if BLOCKED_WORD in body["prompt"]:
            return {"seeds": [3], "finish_reasons": ["Filter reason: prompt"], "images": []}
        size = SD3_SIZES[body["aspect_ratio"]]
        return {"seeds": [int(body.get("seed", 7))], "finish_reasons": [None], "images": [b64_png(*size)]}
    return bm.BedrockMock._default_invoke(req)


def openai_images(body: dict[str, Any]) -> om.Reply | dict[str, Any]:
    model = str(body.get("model"))
    gpt_image = model.startswith("gpt-image-1")
    if gpt_image and "response_format" in body:
        return om.error(400, "Unknown parameter: 'response_format'.", code="unknown_parameter")
    if BLOCKED_WORD in str(body.get("prompt")):
        code = "moderation_blocked" if gpt_image else "content_policy_violation"
        return om.error(400, "Your request was rejected as a result of our safety system.", code=code)
    size = str(body.get("size") or "1024x1024").replace("auto", "1024x1024")
    width, height = (int(x) for x in size.split("x"))
    n = int(body.get("n") or 1)
    if gpt_image:
        data = [{"b64_json": b64_png(width, height, i)} for i in range(n)]
        usage = {"input_tokens": 12, "output_tokens": 272 * n, "total_tokens": 12 + 272 * n}
        return {"created": 1700000000, "data": data, "usage": usage}
    if body.get("response_format") != "b64_json":
        return {"created": 1700000000, "data": [{"url": "https://example.invalid/img.png"}]}
    revised = f"A detailed picture: {body.get('prompt')}"
    return {"created": 1700000000, "data": [{"b64_json": b64_png(width, height), "revised_prompt": revised}]}
