"""Amazon SageMaker real-time endpoints (``boto3`` ``sagemaker-runtime``) serving open chat models
through the Messages API of the LMI and TGI containers. The package exports its ``SPEC``;
``SageMakerProvider`` (and with it boto3) is imported on first access."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lib.providers.lazy import lazy_exports
from lib.providers.sagemaker.spec import SPEC

if TYPE_CHECKING:
    from lib.providers.sagemaker.provider import SageMakerProvider

__all__ = ["SPEC", "SageMakerProvider"]

__getattr__ = lazy_exports(__name__, "lib.providers.sagemaker.provider", ["SageMakerProvider"])
