"""What the service knows about one provider without importing its SDK: the ``ProviderSpec``.

Each provider folder (``lib/providers/<name>/spec.py``) builds exactly one ``SPEC`` and
``lib/providers/registry.py`` lists them. Routing, the gateway, ``/v1/models``, the capability
decision and both cost estimates read these specs, so knowledge about a provider lives in its folder
and nowhere else. A spec is plain data plus small pure functions: building it must not import the
provider's SDK (``factory`` imports it when the first call needs the provider), so that start-up
and the command-line tools stay light.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lib.providers.base import Provider, Sampling
from lib.providers.images import ImageModel, no_images

if TYPE_CHECKING:
    from lib.settings import Settings

#: Every sampling field a chat request can set (a provider honouring all of them passes them on).
ALL_SAMPLING: frozenset[str] = frozenset(f.name for f in dataclasses.fields(Sampling))

#: The assessment ``metadata.agent`` words the web app knows (``static`` is the pipeline's own;
#: ``sagemaker`` names a self-hosted endpoint whose name does not say its model family).
AGENT_WORDS: frozenset[str] = frozenset(
    {"openai", "anthropic", "meta", "amazon", "bedrock", "sagemaker", "local"}
)


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What one model can honour. ``lib.providers.capabilities`` turns a ``False`` the request needs
    into a 400 naming the field; nothing is dropped silently."""

    tools: bool  # ``tools`` and tool turns (assistant ``tool_calls``, ``role: tool``)
    forced_tool_choice: bool  # ``tool_choice`` ``required`` or a named function
    parallel_tool_calls_off: bool  # can honour ``parallel_tool_calls: false``
    images: bool  # image parts in messages
    json: bool  # ``response_format`` json_object / json_schema
    embeddings: bool  # the model makes embeddings
    stream_n: bool  # ``n > 1`` together with ``stream: true``
    sampling: frozenset[str]  # the ``Sampling`` fields honoured

    @property
    def logprobs(self) -> bool:
        return "logprobs" in self.sampling


#: A provider that passes everything through and lets its upstream refuse what a model lacks.
PASS_THROUGH = Capabilities(
    tools=True,
    forced_tool_choice=True,
    parallel_tool_calls_off=True,
    images=True,
    json=True,
    embeddings=True,
    stream_n=True,
    sampling=ALL_SAMPLING,
)


@dataclass(frozen=True, slots=True)
class Price:
    """List price in USD per 1 million tokens for the model ids containing ``pattern`` (lowercase)."""

    pattern: str
    input_usd: float
    output_usd: float = 0.0  # embeddings have no output tokens
    #: fine-tuning: USD per 1 million training tokens (tokens in the file x epochs); None = not tunable
    training_usd: float | None = None


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider, as routing, the gateway, the model list, capability checks and cost estimates
    see it. ``routes`` are tried in order with ``fullmatch``; a pattern with an ``id`` group sends
    that group upstream (``bedrock.<id>``), one without sends the whole name (``gpt-4o``)."""

    name: str  # the provider's key: ``Route.provider``, metrics label, ``owned_by``
    title: str  # how messages name it, e.g. "Bedrock"
    hint: str  # how names reach it, for the unknown-model message, e.g. "gpt-*/o* (OpenAI)"
    routes: tuple[re.Pattern[str], ...]
    factory: Callable[[Settings], Provider]  # imports the SDK lazily
    agent: Callable[[str], str]  # provider model id -> assessment ``metadata.agent`` word
    capabilities: Callable[[str], Capabilities]  # provider model id -> what it honours
    prices: tuple[Price, ...] = ()  # first pattern contained in the model id wins
    listed: tuple[str, ...] = ()  # names ``/v1/models`` always lists (need no credentials)
    #: ``n`` choices come from one upstream call (the prompt is billed once); otherwise the provider
    #: makes one call per choice, each billing the prompt (the rubric tester's estimate counts on it)
    native_n: bool = False
    #: provider model id -> what the image model accepts, ``None`` when it generates no images
    images: Callable[[str], ImageModel | None] = no_images

    def match(self, name: str) -> str | None:
        """The provider model id ``name`` routes to here, or ``None`` when it is not this provider's."""
        for pattern in self.routes:
            m = pattern.fullmatch(name)
            if m is None:
                continue
            model_id = m.group("id") if "id" in pattern.groupindex else name
            if model_id:
                return model_id
        return None

    def price(self, model_id: str) -> Price | None:
        """The price of ``model_id`` (first pattern it contains), ``None`` when not listed."""
        lowered = model_id.lower()
        return next((p for p in self.prices if p.pattern in lowered), None)


def route_pattern(regex: str) -> re.Pattern[str]:
    """A routing pattern; ``.`` matches any character so odd model ids still reach the upstream's
    own error."""
    return re.compile(regex, re.DOTALL)
