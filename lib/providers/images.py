"""Image generation as providers see it: the request, the result, and what one image model accepts.

A provider that generates images implements ``Provider.generate_images(ImageRequest, deadline)``;
its spec's ``images`` function says, per model id, which sizes, counts, qualities and styles the
model accepts (an ``ImageModel``), so the gateway refuses a request the model would refuse before
any upstream call (400 naming the field and what is allowed). A model id without an ``ImageModel``
generates no images (400 naming ``model``). Images are returned as bytes and answered as base64:
the service stores nothing, so there are no URLs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lib.errors import InvalidRequestError
from lib.providers.base import Usage


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """One generation call. ``model`` is the provider's model id; ``size`` is ``WxH``."""

    model: str
    prompt: str
    n: int = 1
    size: str | None = None
    quality: str | None = None
    style: str | None = None
    seed: int | None = None
    negative_prompt: str | None = None
    #: Per-request upstream credential (OpenAI only). Used for this call only.
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class GeneratedImage:
    data: bytes = field(repr=False)
    media_type: str = "image/png"
    seed: int | None = None  # the seed the upstream used, when it says
    revised_prompt: str | None = None  # DALL-E 3 rewrites prompts and says how


@dataclass(frozen=True, slots=True)
class ImageResult:
    model: str
    provider: str
    images: list[GeneratedImage]
    usage: Usage = field(default_factory=Usage)  # tokens, where images are billed by token
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ImageModel:
    """What one image model accepts; the first size is the default."""

    sizes: tuple[str, ...]
    max_n: int = 1
    max_prompt: int = 1000
    qualities: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    max_seed: int | None = None  # None: the model takes no seed
    negative_prompt: bool = False
    usd_per_image: float = 0.0  # list price at the default size and quality, for estimates

    def check(self, request: ImageRequest, name: str) -> ImageRequest:
        """``request`` with its size defaulted; ``InvalidRequestError`` naming the first field model
        ``name`` would refuse, and what it allows."""
        if not request.prompt.strip():
            raise InvalidRequestError("prompt must not be empty", field="prompt")
        if len(request.prompt) > self.max_prompt:
            raise InvalidRequestError(
                f"prompt is longer than the {self.max_prompt} characters model {name} accepts", field="prompt"
            )
        if not 1 <= request.n <= self.max_n:
            allowed = "1" if self.max_n == 1 else f"1 to {self.max_n}"
            raise InvalidRequestError(f"n must be {allowed} for model {name}", field="n")
        size = request.size or self.sizes[0]
        if size not in self.sizes:
            raise InvalidRequestError(
                f"size {size!r} is not accepted by model {name}; use one of {', '.join(self.sizes)}",
                field="size",
            )
        _one_of(request.quality, self.qualities, "quality", name)
        _one_of(request.style, self.styles, "style", name)
        if request.seed is not None:
            if self.max_seed is None:
                raise InvalidRequestError(f"seed is not supported by model {name}", field="seed")
            if not 0 <= request.seed <= self.max_seed:
                raise InvalidRequestError(f"seed must be 0 to {self.max_seed} for model {name}", field="seed")
        if request.negative_prompt is not None and not self.negative_prompt:
            raise InvalidRequestError(
                f"negative_prompt is not supported by model {name}", field="negative_prompt"
            )
        return replace(request, size=size)


def _one_of(value: str | None, allowed: tuple[str, ...], fld: str, name: str) -> None:
    if value is None or value in allowed:
        return
    if not allowed:
        raise InvalidRequestError(f"{fld} is not supported by model {name}", field=fld)
    raise InvalidRequestError(
        f"{fld} {value!r} is not accepted by model {name}; use one of {', '.join(allowed)}", field=fld
    )


def counted(result: ImageResult) -> ImageResult:
    """``result`` with its usage counting its images (what the ledger prices per image)."""
    return replace(result, usage=replace(result.usage, images=len(result.images)))


def dimensions(size: str) -> tuple[int, int]:
    """``"1024x768"`` -> ``(1024, 768)`` (sizes were checked against the model's list)."""
    width, _, height = size.partition("x")
    return int(width), int(height)


def no_images(_model_id: str) -> ImageModel | None:
    """The ``images`` of a provider with no image model."""
    return None
