"""Fixtures for the SageMaker provider tests: dummy AWS credentials, a loopback sagemaker-runtime
reached through ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (read by botocore itself), a gateway."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from lib.providers.gateway import Gateway
from lib.settings import Settings
from tests.providers.bedrock.conftest import aws_env, bedrock_settings
from tests.support.sagemaker_mock import SageMakerMock

__all__ = ["aws_env"]


@pytest.fixture
def sagemaker_mock(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SageMakerMock]:
    with SageMakerMock() as mock:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", mock.endpoint_url)
        yield mock


@pytest.fixture
def settings() -> Settings:
    return bedrock_settings(None)


@pytest.fixture
def gateway(sagemaker_mock: SageMakerMock, settings: Settings) -> Gateway:
    return Gateway(settings, sleep=lambda _s: None)
