"""The Bedrock provider's spec: ``bedrock.<model-or-inference-profile-id>`` routes here (the id is
sent unchanged, so ``bedrock.us.anthropic...`` keeps its cross-region ``us.`` prefix); what each
model family can do through Converse; list prices for the estimates.

Capabilities (Converse): tools on Claude 3+, Llama 3.1+, Nova, Mistral Large, Cohere Command R;
``tool_choice`` ``required``/function only where Converse has a forced tool choice (Claude 3+, Nova);
images on Claude 3+, Nova Lite/Pro/Premier, Llama 3.2 11B/90B and Llama 4; ``top_p`` and ``user``
(sent as ``requestMetadata``); ``parallel_tool_calls: false`` by keeping the answer's first tool call.
Not honoured: ``seed``, ``presence_penalty``, ``frequency_penalty``, ``logit_bias``,
``logprobs``/``top_logprobs``, ``n > 1`` streamed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.bedrock.models import base_model_id, chat_capabilities, embed_format, family
from lib.providers.spec import Capabilities, Price, ProviderSpec, route_pattern

if TYPE_CHECKING:
    from lib.providers.base import Provider
    from lib.providers.images import ImageModel
    from lib.settings import Settings

#: USD per 1M tokens (input, output; training for the models Bedrock fine-tunes), Bedrock on-demand
#: list prices in us-east-1; cross-region profiles (``us.`` ...) cost the same as their model. The
#: first pattern the id contains wins.
PRICES: tuple[Price, ...] = (
    Price("amazon.titan-embed-text-v1", 0.10),
    Price("amazon.titan-embed-text-v2:0", 0.02),
    Price("amazon.titan-embed-image-v1", 0.80),
    Price("cohere.embed-english-v3", 0.10),
    Price("cohere.embed-multilingual-v3", 0.10),
    Price("claude-3-haiku", 0.25, 1.25, training_usd=4.00),
    Price("claude-3-5-haiku", 0.80, 4.00),
    Price("claude-haiku-4-5", 1.00, 5.00),
    Price("claude-3-opus", 15.00, 75.00),
    Price("claude-opus-4", 15.00, 75.00),
    Price("claude-3-sonnet", 3.00, 15.00),
    Price("claude-3-5-sonnet", 3.00, 15.00),
    Price("claude-3-7-sonnet", 3.00, 15.00),
    Price("claude-sonnet-4", 3.00, 15.00),
    Price("llama3-1-405b", 2.40, 2.40),
    Price("llama3-1-70b", 0.72, 0.72),
    Price("llama3-70b", 2.65, 3.50),
    Price("llama3-1-8b", 0.22, 0.22),
    Price("llama3-8b", 0.30, 0.60),
    Price("mistral-large", 4.00, 12.00),
    Price("nova-micro", 0.035, 0.14, training_usd=1.00),
    Price("nova-lite", 0.06, 0.24, training_usd=2.00),
    Price("nova-pro", 0.80, 3.20, training_usd=8.00),
)

_SAMPLING = frozenset({"top_p", "user"})


def _factory(settings: Settings) -> Provider:
    from lib.providers.bedrock.provider import BedrockProvider

    return BedrockProvider(settings)


def _agent(model_id: str) -> str:
    mid = model_id.lower()
    if "anthropic" in mid or "claude" in mid:
        return "anthropic"
    if "meta" in mid or "llama" in mid:
        return "meta"
    if "amazon" in mid or "titan" in mid or "nova" in mid:
        return "amazon"
    return "bedrock"


def _tools(model_id: str) -> bool:
    mid = base_model_id(model_id).lower()
    fam = family(model_id)
    if fam == "anthropic":
        return "claude-v2" not in mid and "claude-instant" not in mid
    if fam == "meta":
        return not ("llama3-8b" in mid or "llama3-70b" in mid or "llama2" in mid)  # 3.1 and later
    if fam == "amazon":
        return "nova" in mid
    if fam == "mistral":
        return "large" in mid
    if fam == "cohere":
        return "command-r" in mid
    return False


def _images(model_id: str) -> bool:
    mid = base_model_id(model_id).lower()
    fam = family(model_id)
    if fam == "anthropic":
        return "claude-3" in mid or "claude-sonnet-4" in mid or "claude-opus-4" in mid or "-4-5" in mid
    if fam == "amazon":
        return "nova-lite" in mid or "nova-pro" in mid or "nova-premier" in mid
    if fam == "meta":
        return "llama3-2-11b" in mid or "llama3-2-90b" in mid or "llama4" in mid
    return False


def _capabilities(model_id: str) -> Capabilities:
    return Capabilities(
        tools=_tools(model_id),
        forced_tool_choice=chat_capabilities(model_id).forced_tool,
        parallel_tool_calls_off=True,  # the answer's first tool call only (see bedrock.converse)
        images=_images(model_id),
        json=True,  # native JSON where the model has it, else a forced tool or the prompt
        embeddings=embed_format(model_id) is not None,
        stream_n=False,
        sampling=_SAMPLING,
    )


def _image_model(model_id: str) -> ImageModel | None:
    from lib.providers.bedrock.images import image_model  # botocore: imported when first asked

    return image_model(model_id)


SPEC = ProviderSpec(
    name="bedrock",
    title="Bedrock",
    hint="bedrock.<model-or-profile-id> (Bedrock)",
    routes=(route_pattern(r"bedrock\.(?P<id>.+)"),),
    factory=_factory,
    agent=_agent,
    capabilities=_capabilities,
    prices=PRICES,
    images=_image_model,
)
