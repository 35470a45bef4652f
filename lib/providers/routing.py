"""Model-name routing: which provider serves a model name, and under which provider model id.

The patterns live in each provider's spec (``lib/providers/<name>/spec.py``), tried in registry
order (``lib.providers.registry``):

- ``gpt-*``, ``o<digit>*``, ``chatgpt-*``, ``text-embedding-*``, ``dall-e-*``, ``openai.<id>`` -> OpenAI
- ``bedrock.<model-or-inference-profile-id>`` -> Bedrock (``bedrock.us.anthropic...`` keeps the
  ``us.`` cross-region profile prefix in the id sent upstream)
- ``sagemaker.<endpoint>[.<inference-component>]`` -> a SageMaker endpoint
- ``local`` and ``local-*`` -> the embedded local provider
- aliases from settings (``MODEL_ALIASES``) are resolved first (chains allowed, cycles refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lib.errors import UnknownModelError
from lib.providers.registry import REGISTRY, Registry
from lib.providers.spec import ProviderSpec


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # the routable name after aliases, e.g. "bedrock.us.anthropic.claude-..."
    provider: str  # the spec's name: "openai" | "bedrock" | "local"
    model_id: str  # what the provider sends upstream
    spec: ProviderSpec = field(compare=False, repr=False)

    @property
    def agent(self) -> str:
        """The assessment ``metadata.agent`` word for this model (the web app's vocabulary)."""
        return self.spec.agent(self.model_id)


def resolve_model(
    name: str, aliases: Mapping[str, str] | None = None, registry: Registry = REGISTRY
) -> Route:
    """Route ``name``; raise ``UnknownModelError`` naming it when nothing serves it."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownModelError("model must be a non-empty string", field="model")
    seen: list[str] = []
    current = name.strip()
    aliases = aliases or {}
    while current in aliases:
        if current in seen:
            raise UnknownModelError(f"model alias cycle: {' -> '.join([*seen, current])}", field="model")
        seen.append(current)
        current = aliases[current]
    found = registry.match(current)
    if found is not None:
        spec, model_id = found
        return Route(current, spec.name, model_id, spec)
    hints = ", ".join(spec.hint for spec in registry)
    raise UnknownModelError(
        f"unknown model {name!r}: use {hints} or a configured alias",
        field="model",
    )
