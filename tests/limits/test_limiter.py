"""The limiter on each store (process memory, a SQLite file, a real Redis): one behaviour, three stores."""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lib.errors import QuotaExceededError
from lib.limits import FailoverLimiter, Limits, MemoryLimiter, SqliteLimiter, StoreLimiter, build_limiter
from lib.limits.base import LEASE_TTL_SECONDS, SWEEP_EVERY, LimiterUnavailable
from lib.limits.redis_limiter import RedisLimiter
from tests.conftest import make_settings
from tests.support.redis_server import RedisServer
from tests.support.server import free_port

T0 = 1_800_000_000.25


class Clock:
    def __init__(self, start: float = T0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture(params=["memory", "sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreLimiter]:
    limiter: StoreLimiter
    if request.param == "memory":
        limiter = MemoryLimiter()
    elif request.param == "sqlite":
        limiter = SqliteLimiter(tmp_path / "limits.db")
    else:
        limiter = RedisLimiter(request.getfixturevalue("redis_url"))
    limiter.now = Clock()  # type: ignore[method-assign]
    yield limiter
    limiter.close()


def refused(limiter: StoreLimiter, subject: str, limits: Limits) -> QuotaExceededError:
    with pytest.raises(QuotaExceededError) as info:
        limiter.acquire(subject, limits, label="test caller")
    return info.value


def test_rpm_refuses_the_n_plus_first_request_of_the_window(store: StoreLimiter) -> None:
    limits = Limits(rpm=5)
    for _ in range(5):
        store.acquire("root", limits)
    exc = refused(store, "root", limits)
    assert exc.kind == "quota" and exc.limit == "rpm"
    assert "5 requests per minute" in exc.message and "test caller" in exc.message
    # Every request arrived in the same second: room again when that second leaves the window.
    assert 59.0 <= (exc.retry_after or 0) <= 60.0


def test_the_window_slides(store: StoreLimiter) -> None:
    clock: Clock = store.now  # type: ignore[assignment]
    limits = Limits(rpm=3)
    store.acquire("root", limits)
    clock.t += 20
    store.acquire("root", limits)
    store.acquire("root", limits)
    clock.t += 30  # 50 s after the first: all three still count
    exc = refused(store, "root", limits)
    assert 9.0 <= (exc.retry_after or 0) <= 10.0  # the first leaves the window at T0 + 60
    clock.t += 10  # the first request has left the window, the other two have not
    store.acquire("root", limits)
    refused(store, "root", limits)


def test_callers_are_counted_apart(store: StoreLimiter) -> None:
    limits = Limits(rpm=1)
    store.acquire("sub:alice", limits)
    store.acquire("sub:bob", limits)
    refused(store, "sub:alice", limits)


def test_tpm_counts_tokens_after_the_call_and_prechecks(store: StoreLimiter) -> None:
    clock: Clock = store.now  # type: ignore[assignment]
    limits = Limits(tpm=100)
    first = store.acquire("key:k1", limits)
    first.add_tokens(60)
    first.release()
    first.release()  # idempotent: counted once
    second = store.acquire("key:k1", limits)  # 60 < 100: admitted
    clock.t += 5
    second.add_tokens(45)
    second.release()
    exc = refused(store, "key:k1", limits)
    assert exc.limit == "tpm" and "100 tokens per minute" in exc.message
    # Checked at T0 + 5; dropping the first 60 tokens (at T0 + 60) leaves 45 < 100.
    assert 54.0 <= (exc.retry_after or 0) <= 55.0
    clock.t = T0 + 60.5
    store.acquire("key:k1", limits)


def test_concurrency_cap_and_release(store: StoreLimiter) -> None:
    limits = Limits(concurrency=2)
    a = store.acquire("root", limits)
    store.acquire("root", limits)
    exc = refused(store, "root", limits)
    assert exc.limit == "concurrency" and exc.retry_after == 1.0
    a.release()
    store.acquire("root", limits)


def test_a_lease_never_released_expires(store: StoreLimiter) -> None:
    clock: Clock = store.now  # type: ignore[assignment]
    limits = Limits(concurrency=1)
    store.acquire("root", limits)  # its worker "dies": never released
    refused(store, "root", limits)
    clock.t += LEASE_TTL_SECONDS + 1
    store.acquire("root", limits)


def test_batch_callers_back_off_while_the_upstream_throttles(store: StoreLimiter) -> None:
    batch = Limits(priority="batch")
    interactive = Limits(rpm=1000)
    store.acquire("key:tester", batch)
    store.note_throttle(30)
    exc = refused(store, "key:tester", batch)
    assert exc.limit == "batch_backoff" and 0 < (exc.retry_after or 0) <= 30
    store.acquire("key:webapp", interactive)


def test_unlimited_callers_touch_no_store(tmp_path: Path) -> None:
    limiter = SqliteLimiter(tmp_path / "limits.db")
    lease = limiter.acquire("root", Limits())
    lease.add_tokens(1000)
    lease.release()
    assert not (tmp_path / "limits.db").exists()


def _rows(limiter: StoreLimiter) -> int:
    if isinstance(limiter, MemoryLimiter):
        return sum(len(b) for b in limiter._buckets.values()) + sum(len(x) for x in limiter._leases.values())
    assert isinstance(limiter, SqliteLimiter)
    with limiter._transaction() as txn:
        buckets = txn._conn.execute("SELECT COUNT(*) FROM limit_bucket").fetchone()[0]
        leases = txn._conn.execute("SELECT COUNT(*) FROM limit_lease").fetchone()[0]
    return int(buckets) + int(leases)


def test_sweep_drops_callers_not_seen_for_a_minute(tmp_path: Path) -> None:
    for limiter in (MemoryLimiter(), SqliteLimiter(tmp_path / "limits.db")):
        clock = Clock()
        limiter.now = clock  # type: ignore[method-assign]
        limiter.acquire("sub:gone", Limits(rpm=5, concurrency=1))  # never released
        assert _rows(limiter) == 2
        clock.t += LEASE_TTL_SECONDS + 1
        limiter._admitted = SWEEP_EVERY - 1  # the next admission sweeps every caller first
        limiter.acquire("sub:other", Limits(rpm=1))
        assert _rows(limiter) == 1  # only sub:other's new bucket
        limiter.close()


def _hammer(path: str, attempts: int, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    limiter = SqliteLimiter(path)
    admitted = 0
    for _ in range(attempts):
        try:
            limiter.acquire("root", Limits(rpm=30))
            admitted += 1
        except QuotaExceededError:
            pass
    out.put(admitted)


def test_sqlite_holds_across_processes(tmp_path: Path) -> None:
    """BEGIN IMMEDIATE: two processes racing for the last slots never both win one."""
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    procs = [ctx.Process(target=_hammer, args=(str(tmp_path / "l.db"), 40, out)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert sum(out.get(timeout=5) for _ in procs) == 30


def test_sqlite_that_cannot_be_written_is_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    limiter = SqliteLimiter(blocker / "limits.db")
    with pytest.raises(LimiterUnavailable):
        limiter.acquire("root", Limits(rpm=1))


def test_redis_down_is_unavailable() -> None:
    limiter = RedisLimiter(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(LimiterUnavailable):
        limiter.acquire("root", Limits(rpm=1))
    with pytest.raises(LimiterUnavailable):
        limiter.note_throttle(1)
    # A lease whose release cannot reach Redis is left to expire there, not raised to the client.
    from lib.limits import Lease

    Lease(limiter, "root", Limits(concurrency=1)).release()


def test_failover_serves_per_replica_logs_once_and_reconnects(
    own_redis: RedisServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fallbacks: list[int] = []
    limiter = FailoverLimiter(
        RedisLimiter(own_redis.url),
        SqliteLimiter(tmp_path / "limits.db"),
        on_fallback=lambda: fallbacks.append(1),
        retry_seconds=0.2,
    )
    limits = Limits(rpm=3)
    limiter.acquire("root", limits)
    assert not limiter.degraded and not fallbacks
    own_redis.kill()
    caplog.set_level(logging.INFO, logger="aiproxy.limits")
    for _ in range(3):  # the per-replica store starts from zero
        limiter.acquire("root", limits).release()
    with pytest.raises(QuotaExceededError):
        limiter.acquire("root", limits)
    limiter.note_throttle(5)  # goes to the fallback while Redis is down
    with pytest.raises(QuotaExceededError):
        limiter.acquire("key:batch", Limits(priority="batch"))
    assert limiter.degraded and len(fallbacks) == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "per replica" in warnings[0].getMessage()

    own_redis.start()  # same port, empty
    import time

    time.sleep(0.25)
    limiter.acquire("root", limits)  # back on Redis: its own count starts again
    assert not limiter.degraded
    assert any("reachable again" in r.getMessage() for r in caplog.records)
    client = redis.Redis.from_url(own_redis.url)
    assert client.exists("aiproxy:limits:root:req")
    client.close()
    limiter.close()


def test_unlimited_through_failover_never_touches_redis(tmp_path: Path) -> None:
    limiter = FailoverLimiter(
        RedisLimiter(f"redis://127.0.0.1:{free_port()}/0"), SqliteLimiter(tmp_path / "l.db")
    )
    limiter.acquire("root", Limits()).release()
    assert not limiter.degraded


def test_build_limiter_picks_the_store(tmp_path: Path) -> None:
    sqlite = build_limiter(make_settings(limits_sqlite_path=str(tmp_path / "a.db")))
    assert isinstance(sqlite, FailoverLimiter) and isinstance(sqlite.primary, SqliteLimiter)
    assert sqlite.primary.path == tmp_path / "a.db"
    default = build_limiter(make_settings(data_dir=str(tmp_path)))
    assert isinstance(default, FailoverLimiter) and isinstance(default.primary, SqliteLimiter)
    assert default.primary.path == tmp_path / "limits.db"
    assert isinstance(build_limiter(make_settings(limits_backend="memory")), MemoryLimiter)
    shared = build_limiter(make_settings(redis_url="redis://127.0.0.1:1/0", data_dir=str(tmp_path)))
    assert isinstance(shared, FailoverLimiter) and isinstance(shared.primary, RedisLimiter)
    assert isinstance(shared.fallback, SqliteLimiter)
    from lib.settings import SettingsError

    with pytest.raises(SettingsError, match="REDIS_URL"):
        build_limiter(make_settings(limits_backend="redis"))
