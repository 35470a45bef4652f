"""A provider added the way the README says a provider is added: this module stands for a folder
``lib/providers/echo/`` (a provider class plus the one ``SPEC`` it exports); a registry that lists
``SPEC`` is the one line. ``tests/core/test_registry.py`` proves nothing else has to change for it
to be routed, built, listed, priced and capability-checked.

``echo.<id>`` routes here. Chat answers ``echo: <last user text>``; embeddings are
``[len(text), 1.0]``. It honours ``seed`` but no tools, images or JSON output, and makes embeddings
only with ``echo.embed*`` ids, so each capability check has something to refuse.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.spec import Capabilities, Price, ProviderSpec, route_pattern

if TYPE_CHECKING:
    from lib.settings import Settings

#: How many providers the factory built (the gateway must build one per process, lazily).
BUILT: list[EchoProvider] = []


class EchoProvider:
    name = "echo"

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        text = "echo: " + request.messages[-1].text
        choices = [Choice(i, text, "stop") for i in range(request.n)]
        return ChatResult(request.model, self.name, choices, Usage(len(request.messages), 2))

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        yield ChatDelta(text="echo: ", model=request.model)
        yield ChatDelta(text=request.messages[-1].text, finish_reason="stop", usage=Usage(1, 2))

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        vectors = [[float(len(t)), 1.0] for t in request.texts]
        return EmbedResult(request.model, self.name, vectors, Usage(len(request.texts), 0))

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        return [ModelInfo("echo.small", self.name, self.name)]


def _factory(settings: Settings) -> EchoProvider:
    provider = EchoProvider()
    BUILT.append(provider)
    return provider


def _capabilities(model_id: str) -> Capabilities:
    """Only ``seed``; embeddings only from ``echo.embed*``; everything else refused."""
    return Capabilities(
        sampling=frozenset({"seed"}),
        embeddings=model_id.startswith("embed"),
        **dict.fromkeys(("tools", "forced_tool_choice", "parallel_tool_calls_off"), False),
        **dict.fromkeys(("images", "json", "stream_n"), False),
    )


SPEC = ProviderSpec(
    name="echo",
    title="Echo",
    hint="echo.<id> (Echo)",
    routes=(route_pattern(r"echo\.(?P<id>.+)"),),
    factory=_factory,
    agent=lambda _model_id: "meta",
    capabilities=_capabilities,
    prices=(Price("embed", 0.5), Price("small", 1.0, 4.0)),
    listed=("echo.small",),
)
