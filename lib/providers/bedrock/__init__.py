"""AWS Bedrock provider (``boto3`` ``bedrock-runtime``: Converse for chat, InvokeModel for embeddings).
The package exports its ``SPEC``; ``BedrockProvider`` (and with it boto3) is imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lib.providers.bedrock.spec import SPEC

if TYPE_CHECKING:
    from lib.providers.bedrock.provider import BedrockProvider

__all__ = ["SPEC", "BedrockProvider"]


def __getattr__(name: str) -> Any:
    if name == "BedrockProvider":
        from lib.providers.bedrock.provider import BedrockProvider

        return BedrockProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
