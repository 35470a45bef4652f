"""The real service in front of both cloud stand-ins (OpenAI and Bedrock), and SDK clients for it.

The SDK end-to-end tests each ran the same gunicorn service over the same two loopback upstreams
and built the same client; one copy here keeps their set-up identical (fake AWS keys, no SDK
retries, the upstreams' recorded requests cleared before each test).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import openai

from tests.support.bedrock_mock import BedrockMock
from tests.support.openai_mock import OpenAIMock
from tests.support.server import Service


def upstream_env(
    key: str, tag: str, *, oai: OpenAIMock | None = None, bedrock: BedrockMock | None = None
) -> dict[str, str]:
    """The service's environment: ``key`` as its API key, calling the stand-ins given; ``tag``
    names the test module in the fake upstream credentials."""
    env = {"AIPROXY_API_KEY": key}
    if oai is not None:
        env |= {"OPENAI_API_KEY": f"sk-{tag}", "OPENAI_BASE_URL": oai.base_url}
    if bedrock is not None:
        env |= {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.endpoint_url,
            "AWS_ACCESS_KEY_ID": tag,
            "AWS_SECRET_ACCESS_KEY": f"{tag}-secret",
            "AWS_REGION": "us-east-1",
        }
    return env


def cloud_service(key: str, oai: OpenAIMock, bedrock: BedrockMock, tag: str) -> Service:
    """The service (one worker) in front of both stand-ins (``upstream_env``)."""
    return Service(upstream_env(key, tag, oai=oai, bedrock=bedrock), workers=1)


@contextlib.contextmanager
def sdk_client(
    service: Service, key: str, upstreams: Iterable[OpenAIMock | BedrockMock] = (), **options: Any
) -> Iterator[openai.OpenAI]:
    """An ``openai.OpenAI`` client of ``service`` (no retries: a test sees the first answer), with
    the ``upstreams``' recorded requests cleared first; closed afterwards."""
    for upstream in upstreams:
        upstream.requests.clear()
    client = openai.OpenAI(base_url=service.url + "/v1", api_key=key, max_retries=0, **options)
    try:
        yield client
    finally:
        client.close()
