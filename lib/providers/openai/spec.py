"""The OpenAI provider's spec: ``gpt-*``, ``o<digit>*``, ``chatgpt-*``, ``text-embedding-*``,
``dall-e-*``, ``davinci*``, ``babbage*`` and ``openai.<id>`` route here; everything passes through
(OpenAI itself refuses what a model lacks); list prices for the estimates; the image models
(``gpt-image-1``, ``dall-e-3``) and what they accept (``lib.providers.openai.images``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.spec import PASS_THROUGH, Capabilities, Price, ProviderSpec, route_pattern

if TYPE_CHECKING:
    from lib.providers.base import Provider
    from lib.providers.images import ImageModel
    from lib.settings import Settings

#: USD per 1M tokens (input, output; training for fine-tunable models) from OpenAI's public price
#: page; update when a price changes.
#: Order matters: the first pattern the model id contains wins (``gpt-4o-mini`` before ``gpt-4o``).
PRICES: tuple[Price, ...] = (
    Price("text-embedding-3-small", 0.02),
    Price("text-embedding-3-large", 0.13),
    Price("text-embedding-ada-002", 0.10),
    Price("gpt-4o-mini", 0.15, 0.60, training_usd=3.00),
    Price("gpt-4o", 2.50, 10.00, training_usd=25.00),
    Price("gpt-4.1-nano", 0.10, 0.40, training_usd=1.50),
    Price("gpt-4.1-mini", 0.40, 1.60, training_usd=5.00),
    Price("gpt-4.1", 2.00, 8.00, training_usd=25.00),
    Price("gpt-4-turbo", 10.00, 30.00),
    Price("gpt-4", 30.00, 60.00),
    Price("gpt-3.5-turbo", 0.50, 1.50, training_usd=8.00),
    Price("o3-mini", 1.10, 4.40),
    Price("o4-mini", 1.10, 4.40),
    Price("o1-mini", 1.10, 4.40),
    Price("o1", 15.00, 60.00),
)


def _factory(settings: Settings) -> Provider:
    from lib.providers.openai.provider import OpenAIProvider

    return OpenAIProvider(settings)


def _agent(_model_id: str) -> str:
    return "openai"


def _capabilities(_model_id: str) -> Capabilities:
    return PASS_THROUGH


def _images(model_id: str) -> ImageModel | None:
    from lib.providers.openai.images import image_model  # the SDK: imported when first asked

    return image_model(model_id)


SPEC = ProviderSpec(
    name="openai",
    title="OpenAI",
    hint="gpt-*/o* (OpenAI)",
    routes=(
        route_pattern(r"openai\.(?P<id>.+)"),
        route_pattern(r"(?:gpt-|chatgpt-|o\d|text-embedding-|davinci|babbage|dall-e-).*"),
    ),
    factory=_factory,
    agent=_agent,
    capabilities=_capabilities,
    prices=PRICES,
    native_n=True,
    images=_images,
)
