"""The SageMaker provider's spec: ``sagemaker.<endpoint-name>[.<inference-component>]`` routes here
(the id after ``sagemaker.`` is sent as ``EndpointName``, and ``InferenceComponentName`` when given).

Capabilities (the Messages API of LMI/TGI containers, whichever model they serve): text chat with
``temperature``, ``max_tokens``, ``stop``, ``top_p``, ``seed``, ``presence_penalty`` and
``frequency_penalty``; JSON output through an instruction. Refused by name (400): tools, images,
``logprobs``, ``logit_bias``, ``user``, ``n > 1`` streamed, embeddings. No list prices: an endpoint
is paid per instance hour, not per token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.spec import Capabilities, ProviderSpec, route_pattern

if TYPE_CHECKING:
    from lib.providers.base import Provider
    from lib.settings import Settings

CAPABILITIES = Capabilities(
    tools=False,
    forced_tool_choice=False,
    parallel_tool_calls_off=False,
    images=False,
    json=True,
    embeddings=False,
    stream_n=False,
    sampling=frozenset({"top_p", "seed", "presence_penalty", "frequency_penalty"}),
)


def _factory(settings: Settings) -> Provider:
    from lib.providers.sagemaker.provider import SageMakerProvider

    return SageMakerProvider(settings)


def _agent(model_id: str) -> str:
    """Endpoint names are free text; Code.org names them after the model (``llama-3-8b-...``)."""
    mid = model_id.lower()
    return "meta" if "llama" in mid or "meta" in mid else "sagemaker"


SPEC = ProviderSpec(
    name="sagemaker",
    title="SageMaker",
    hint="sagemaker.<endpoint>[.<inference-component>] (SageMaker)",
    routes=(route_pattern(r"sagemaker\.(?P<id>[^.]+(?:\.[^.]+)?)"),),
    factory=_factory,
    agent=_agent,
    capabilities=lambda _model_id: CAPABILITIES,
)
