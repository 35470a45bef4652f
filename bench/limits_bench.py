"""What the per-caller limit check costs on the request path, per store.

    .venv/bin/python bench/limits_bench.py [--checks 5000] [--callers 50]

For each store (a real ``redis-server`` on loopback, started here unless ``TEST_REDIS_URL`` is set; a
SQLite file in a temporary directory; process memory) it admits ``--checks`` requests spread over
``--callers`` callers, each with an RPM, a TPM and a concurrency limit (the most work a check does),
and reports the p50/p99 of the check (``Limiter.acquire``, on the hot path before the route runs) and
of the release (``Lease.release``, after the last byte of the answer is sent, off the hot path).
Limits are set high enough that every check admits. The target is p50 <= 0.3 ms for Redis and SQLite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.limits import Limits, MemoryLimiter, SqliteLimiter, StoreLimiter
from lib.limits.redis_limiter import RedisLimiter
from tests.support.redis_server import shared_redis_url


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(limiter: StoreLimiter, checks: int, callers: int) -> dict[str, float]:
    limits = Limits(rpm=10_000_000, tpm=10_000_000_000, concurrency=1000)
    for i in range(200):  # warm-up: connections, script cache, page cache
        limiter.acquire(f"key:warm{i % callers}", limits).release()
    check: list[float] = []
    release: list[float] = []
    for i in range(checks):
        t0 = time.perf_counter()
        lease = limiter.acquire(f"key:caller{i % callers}", limits)
        t1 = time.perf_counter()
        lease.add_tokens(250)
        lease.release()
        t2 = time.perf_counter()
        check.append(t1 - t0)
        release.append(t2 - t1)
    return {
        "check_p50_ms": _pct(check, 0.5),
        "check_p99_ms": _pct(check, 0.99),
        "check_mean_ms": statistics.fmean(check) * 1000,
        "release_p50_ms": _pct(release, 0.5),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--checks", type=int, default=5000)
    parser.add_argument("--callers", type=int, default=50)
    args = parser.parse_args()
    with shared_redis_url() as url, tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, StoreLimiter]] = [
            ("redis", RedisLimiter(url)),
            ("sqlite", SqliteLimiter(Path(tmp) / "limits.db")),
            ("memory", MemoryLimiter()),
        ]
        print(f"{args.checks} checks over {args.callers} callers (RPM + TPM + concurrency each)")
        print(f"{'store':8} {'check p50':>10} {'check p99':>10} {'check mean':>11} {'release p50':>12}")
        for name, limiter in stores:
            r = measure(limiter, args.checks, args.callers)
            print(
                f"{name:8} {r['check_p50_ms']:>8.3f}ms {r['check_p99_ms']:>8.3f}ms "
                f"{r['check_mean_ms']:>9.3f}ms {r['release_p50_ms']:>10.3f}ms"
            )
            limiter.close()


if __name__ == "__main__":
    main()
