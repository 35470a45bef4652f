"""OpenAI provider (official SDK). The package exports its ``SPEC``; ``OpenAIProvider`` is imported
on first access, so reading the spec (routing, the model list) does not load the SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib.providers.openai.spec import SPEC

if TYPE_CHECKING:
    from lib.providers.openai.provider import OpenAIProvider

__all__ = ["SPEC", "OpenAIProvider"]


def __getattr__(name: str) -> Any:
    if name == "OpenAIProvider":
        from lib.providers.openai.provider import OpenAIProvider

        return OpenAIProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
