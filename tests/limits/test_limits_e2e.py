"""Limits hold across gunicorn workers and across service instances: the real service under gunicorn,
a real redis-server, a real SQLite file.  Requests are sent to each worker on purpose (one keep-alive
connection per worker, see tests/support/workers.py), so "the N+1th request is 429" covers both."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client import multiprocess as prom_multiprocess

from tests.support.redis_server import RedisServer
from tests.support.server import Service
from tests.support.workers import connection_per_worker

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY = "limits-e2e-key"


def get(svc: Service, path: str = "/v1/models") -> tuple[int, dict[str, Any], dict[str, str]]:
    req = urllib.request.Request(svc.url + path, headers={"Authorization": KEY, "Connection": "close"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}"), dict(exc.headers)


def burst(svc: Service, count: int) -> Counter[int]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = list(pool.map(lambda _: get(svc), range(count)))
    for status, body, headers in answers:
        if status == 429:
            assert body["error"]["code"] == "quota" and int(headers["Retry-After"]) >= 1
    return Counter(status for status, _, _ in answers)


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    metrics = tmp_path / "metrics"
    metrics.mkdir(exist_ok=True)
    return {
        "AIPROXY_API_KEY": KEY,
        "DATA_DIR": str(tmp_path / "data"),
        "LIMITS_SQLITE_PATH": str(tmp_path / "limits.db"),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics),
        **extra,
    }


def metric(metrics_dir: Path, name: str) -> float:
    registry = CollectorRegistry()
    prom_multiprocess.MultiProcessCollector(registry, path=str(metrics_dir))
    return float(registry.get_sample_value(name) or 0.0)


def call(conn: http.client.HTTPConnection) -> int:
    conn.request("GET", "/v1/models", headers={"Authorization": KEY})
    resp = conn.getresponse()
    body = json.loads(resp.read() or b"{}")
    if resp.status == 429:
        assert body["error"]["code"] == "quota" and int(resp.getheader("Retry-After") or 0) >= 1
    return resp.status


def alternate(
    svc: Service, count: int
) -> tuple[list[int], http.client.HTTPConnection, http.client.HTTPConnection]:
    """``count`` requests alternating between the two workers, on one keep-alive connection each."""
    a, b = connection_per_worker(svc).values()
    return [call(a if i % 2 == 0 else b) for i in range(count)], a, b


def test_redis_limit_holds_across_two_workers(redis_url: str, tmp_path: Path) -> None:
    with Service(env(tmp_path, REDIS_URL=redis_url, ROOT_KEY_RPM="6"), workers=2) as svc:
        statuses, a, b = alternate(svc, 6)
        assert statuses == [200] * 6  # three on each worker
        assert call(a) == 429 and call(b) == 429  # the 7th in the window, on either worker
        # Concurrent requests race for the last slots: never more than the limit admitted.
        assert burst(svc, 10) == {429: 10}


def test_redis_limit_holds_across_two_instances(redis_url: str, tmp_path: Path) -> None:
    shared = env(tmp_path, REDIS_URL=redis_url, ROOT_KEY_RPM="6")
    with Service(shared, workers=1) as a, Service(shared, workers=1) as b:
        assert [get(a)[0] for _ in range(3)] == [200, 200, 200]
        assert [get(b)[0] for _ in range(3)] == [200, 200, 200]
        assert get(a)[0] == 429  # the 7th in the window, whichever replica it reaches
        assert get(b)[0] == 429


def test_concurrent_burst_admits_exactly_the_limit(redis_url: str, tmp_path: Path) -> None:
    with Service(env(tmp_path, REDIS_URL=redis_url, ROOT_KEY_RPM="20"), workers=2) as svc:
        assert burst(svc, 30) == {200: 20, 429: 10}


def test_sqlite_limit_holds_across_two_workers(tmp_path: Path) -> None:
    with Service(env(tmp_path, ROOT_KEY_RPM="6"), workers=2) as svc:
        statuses, a, b = alternate(svc, 6)
        assert statuses == [200] * 6
        assert call(a) == 429 and call(b) == 429
        assert burst(svc, 10) == {429: 10}
    assert (tmp_path / "limits.db").is_file()


def test_redis_killed_mid_test_limits_go_per_replica(own_redis: RedisServer, tmp_path: Path) -> None:
    with Service(env(tmp_path, REDIS_URL=own_redis.url, ROOT_KEY_RPM="8"), workers=2) as svc:
        statuses, a, b = alternate(svc, 3)
        assert statuses == [200] * 3  # counted in Redis
        own_redis.kill()
        # Still served; this replica's own store (the SQLite file both workers share) starts at zero.
        assert [call(a if i % 2 == 0 else b) for i in range(8)] == [200] * 8
        assert call(a) == 429 and call(b) == 429
        assert metric(tmp_path / "metrics", "aiproxy_limiter_fallback_total") == 10
        warnings = [line for line in svc.logs().splitlines() if "limit store unreachable" in line]
        assert len(warnings) == 2  # once per worker, not once per request
        assert all('"WARNING"' in line for line in warnings)
