"""The embedded provider's spec: ``local`` and ``local-*`` route here (the name is the model id);
SmolLM2 on llama.cpp honours ``top_p``, ``seed``, ``presence_penalty`` and ``frequency_penalty``
and JSON through a grammar; tools through a grammar too (one call per answer, so ``parallel_tool_calls``
false is what it always does; see ``tools``); it takes no images; MiniLM makes the embeddings. Free.

The factory imports the provider module only when the first call needs it: a build without this
package (or its optional model packages) answers ``provider_not_installed``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.errors import ProviderNotInstalledError
from lib.providers.spec import Capabilities, Price, ProviderSpec, route_pattern

if TYPE_CHECKING:
    from lib.providers.base import Provider
    from lib.providers.images import ImageModel
    from lib.settings import Settings

_SAMPLING = frozenset({"top_p", "seed", "presence_penalty", "frequency_penalty"})


def _factory(settings: Settings) -> Provider:
    try:
        from lib.providers.local import create_local_provider
    except ImportError as exc:  # the package itself is missing from this build
        raise ProviderNotInstalledError("local provider not installed", provider="local") from exc
    return create_local_provider(settings)


def _agent(_model_id: str) -> str:
    return "local"


def _capabilities(model_id: str) -> Capabilities:
    # Imported here: the provider module (and lib.concurrency) load with the first local request, not
    # at start-up. Names that only select the chat model make no embeddings (refused by name).
    from lib.providers.local.provider import CHAT_NAMES, EMBED_NAMES

    return Capabilities(
        tools=True,  # a grammar: text or one call of an offered function (lib.providers.local.tools)
        forced_tool_choice=True,  # required / a named function: the grammar admits only that call
        parallel_tool_calls_off=True,  # one call per answer, always
        images=False,
        json=True,  # a GBNF grammar built from the schema
        embeddings=model_id in EMBED_NAMES or model_id not in CHAT_NAMES,
        stream_n=True,
        sampling=_SAMPLING,
    )


def _images(_model_id: str) -> ImageModel | None:
    """No image model ships with the embedded provider: asked for images it answers 503."""
    raise ProviderNotInstalledError(
        "the local provider has no image model installed: use an OpenAI or Bedrock image model",
        provider="local",
    )


SPEC = ProviderSpec(
    name="local",
    title="local",
    hint="local (embedded)",
    routes=(route_pattern(r"local(?:-.*)?"),),
    factory=_factory,
    agent=_agent,
    capabilities=_capabilities,
    prices=(Price("local", 0.0, 0.0),),
    listed=("local",),
    images=_images,
)
