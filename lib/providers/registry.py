"""The one registry of providers: the ordered specs every provider-aware part of the service reads.

Routing (``lib.providers.routing``), the gateway (provider construction and the model catalog behind
``/v1/models``), the capability decision (``lib.providers.capabilities``) and the cost estimates of
the rubric tester and the Dance AI tool all look providers up here. Adding a provider is one folder
``lib/providers/<name>/`` exporting a ``SPEC`` plus one line in ``PROVIDERS``. The first spec whose
routes match a model name serves it, so order only matters if two specs claim the same name.

Importing this module imports no SDK (no ``openai``, ``boto3``, ``torch`` or ``llama_cpp``): each
spec's factory imports its provider when the gateway first needs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lib.providers.bedrock import SPEC as BEDROCK
from lib.providers.local import SPEC as LOCAL
from lib.providers.openai import SPEC as OPENAI
from lib.providers.sagemaker import SPEC as SAGEMAKER
from lib.providers.spec import ProviderSpec


@dataclass(frozen=True, slots=True)
class Registry:
    """An ordered set of provider specs (tests build their own to register a fake provider)."""

    specs: tuple[ProviderSpec, ...]

    def __post_init__(self) -> None:
        names = [s.name for s in self.specs]
        if len(set(names)) != len(names):
            raise ValueError(f"provider names must be unique: {names}")

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(self.specs)

    def get(self, name: str) -> ProviderSpec | None:
        return next((s for s in self.specs if s.name == name), None)

    def match(self, name: str) -> tuple[ProviderSpec, str] | None:
        """The spec serving ``name`` (already alias-resolved) and the provider model id, else None."""
        for spec in self.specs:
            model_id = spec.match(name)
            if model_id is not None:
                return spec, model_id
        return None


PROVIDERS: tuple[ProviderSpec, ...] = (
    OPENAI,
    BEDROCK,
    SAGEMAKER,
    LOCAL,
)

REGISTRY = Registry(PROVIDERS)
