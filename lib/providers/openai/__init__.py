"""OpenAI provider (official SDK). The package exports its ``SPEC``; ``OpenAIProvider`` is imported
on first access, so reading the spec (routing, the model list) does not load the SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.lazy import lazy_exports
from lib.providers.openai.spec import SPEC

if TYPE_CHECKING:
    from lib.providers.openai.provider import OpenAIProvider

__all__ = ["SPEC", "OpenAIProvider"]

__getattr__ = lazy_exports(__name__, "lib.providers.openai.provider", ["OpenAIProvider"])
