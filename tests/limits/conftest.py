"""Fixtures of the limit tests: a real Redis (``TEST_REDIS_URL`` or one started here), cleared of
limit counters before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import NO_REDIS, RedisServer, redis_server_binary


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    if redis_server_binary() is None:
        pytest.skip(NO_REDIS)
    with RedisServer() as server:
        yield server.url


@pytest.fixture
def redis_url(redis_session_url: str) -> str:
    """The shared Redis with no limit counters left by an earlier test (other keys are kept)."""
    client = redis.Redis.from_url(redis_session_url)
    try:
        keys = list(client.scan_iter(match="aiproxy:limits:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
    return redis_session_url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of this test alone (the test may kill and restart it)."""
    if redis_server_binary() is None:
        pytest.skip("this test stops Redis itself and needs redis-server on PATH")
    server = RedisServer()
    with server:
        yield server
