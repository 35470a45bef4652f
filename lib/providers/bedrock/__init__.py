"""AWS Bedrock provider (``boto3`` ``bedrock-runtime``: Converse for chat, InvokeModel for embeddings).
The package exports its ``SPEC``; ``BedrockProvider`` (and with it boto3) is imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.bedrock.spec import SPEC
from lib.providers.lazy import lazy_exports

if TYPE_CHECKING:
    from lib.providers.bedrock.provider import BedrockProvider

__all__ = ["SPEC", "BedrockProvider"]

__getattr__ = lazy_exports(__name__, "lib.providers.bedrock.provider", ["BedrockProvider"])
