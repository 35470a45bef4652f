"""Fixtures of the limit tests: a real Redis (``TEST_REDIS_URL`` or one started here), cleared of
limit counters before each test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
import redis

from tests.support.redis_server import NO_REDIS, RedisServer, redis_server_binary, shared_redis_url


def _skip_or_fail(reason: str) -> None:
    """Skip in a focused run; fail under bin/test.sh (``AIPROXY_REQUIRE_SERVERS=1``), where Redis
    must be there so CI cannot go green without having tested it."""
    if os.environ.get("AIPROXY_REQUIRE_SERVERS") == "1":
        pytest.fail(reason + " -- but this run requires the servers")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    if not os.environ.get("TEST_REDIS_URL") and redis_server_binary() is None:
        _skip_or_fail(NO_REDIS)
    with shared_redis_url() as url:
        yield url


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
        _skip_or_fail("this test stops Redis itself and needs redis-server on PATH")
    server = RedisServer()
    with server:
        yield server
