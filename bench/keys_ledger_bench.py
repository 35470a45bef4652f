"""What a virtual key costs on the request path: key check + limit check + ledger row, per limit store.

    .venv/bin/python bench/keys_ledger_bench.py [--requests 5000] [--keys 50]

Per simulated request, timed together as the request path pays them:

1. key check: the worker's key cache lookup (one HMAC-SHA256 and a dict access) and the status,
   scope and budget checks (``src.accounts.check_virtual_key``);
2. limit check: ``Limiter.acquire`` with the key's RPM, TPM and concurrency (Redis on loopback --
   ``TEST_REDIS_URL`` or a ``redis-server`` started here -- then a SQLite file);
3. ledger: the gateway observer's row for one upstream call (``LedgerRecorder.observe_upstream``:
   price lookup, row, per-key counters, queue append; the database write happens in the background).

The lease release (after the last byte is sent) and the background ledger flush are off the request
path and reported separately.  Target (issue 14): p50 <= 0.3 ms for SQLite and for Redis.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prometheus_client import CollectorRegistry

from lib.keys import KeyCache, KeyRepository, KeySpec
from lib.ledger import CallContext, LedgerRecorder, LedgerWriter
from lib.limits import Limits, SqliteLimiter, StoreLimiter
from lib.limits.redis_limiter import RedisLimiter
from lib.providers.base import Usage
from lib.providers.gateway import UpstreamCall
from lib.store import Store
from src.accounts import KeyMetrics, check_virtual_key
from tests.support.redis_server import shared_redis_url

SECRET = "bench-key-hash-secret-0123456789abcdef"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def measure(tmp: Path, limiter: StoreLimiter, requests: int, n_keys: int) -> dict[str, float]:
    store = Store(f"sqlite:///{tmp / 'aiproxy.db'}")
    store.migrate()
    repo = KeyRepository(store, SECRET)
    spec = KeySpec(name="bench", scopes=["chat"], rpm=10_000_000, tpm=10_000_000_000, monthly_budget_usd=1e9)
    keys = [repo.create(spec) for _ in range(n_keys)]
    cache = KeyCache(repo, cache_file=tmp / "keys-cache.json", refresh_seconds=5)
    writer = LedgerWriter(store.engine, flush_seconds=0.2)
    writer.on_record = KeyMetrics(CollectorRegistry(), lambda key_id: key_id)  # per-key /metrics, as served
    recorder = LedgerRecorder(writer, lambda: context, charge=cache.add_spend)
    context = CallContext("", "/v1/chat/completions", "bench")
    usage = Usage(120, 40)
    for record, plaintext in keys:  # warm-up: cache loaded, connections open
        cache.lookup(plaintext)
        limiter.acquire(f"key:{record.id}", Limits(1_000_000, None, 1000)).release()
    hot: list[float] = []
    release: list[float] = []
    for i in range(requests):
        _, plaintext = keys[i % n_keys]
        t0 = time.perf_counter()
        found = cache.lookup(plaintext)
        assert found is not None
        refused = check_virtual_key(found, "/v1/chat/completions", "chat", cache.spend(found.id))
        assert refused is None
        lease = limiter.acquire(f"key:{found.id}", Limits(found.rpm, found.tpm, 1000, "interactive"))
        context = CallContext(found.id, "/v1/chat/completions", f"req-{i}")
        recorder.observe_upstream(UpstreamCall("openai", "gpt-4o-mini", "chat", 0.4, usage, None))
        t1 = time.perf_counter()
        lease.add_tokens(usage.total_tokens)
        lease.release()
        release.append(time.perf_counter() - t1)
        hot.append(t1 - t0)
    flush_started = time.perf_counter()
    writer.close()
    cache.stop()
    return {
        "p50_ms": _pct(hot, 0.5),
        "p99_ms": _pct(hot, 0.99),
        "mean_ms": statistics.fmean(hot) * 1000,
        "release_p50_ms": _pct(release, 0.5),
        "rows_written": float(writer.written),
        "final_flush_ms": (time.perf_counter() - flush_started) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--keys", type=int, default=50)
    args = parser.parse_args()
    with shared_redis_url() as url:
        print(f"{args.requests} requests over {args.keys} virtual keys: key check + limit check + ledger row")
        print(f"{'limits':8} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'release p50':>12} {'rows':>6}")
        for name in ("redis", "sqlite"):
            with tempfile.TemporaryDirectory() as tmp:
                limiter: StoreLimiter = (
                    RedisLimiter(url) if name == "redis" else SqliteLimiter(Path(tmp) / "limits.db")
                )
                r = measure(Path(tmp), limiter, args.requests, args.keys)
            print(
                f"{name:8} {r['p50_ms']:8.3f} {r['p99_ms']:8.3f} {r['mean_ms']:8.3f} "
                f"{r['release_p50_ms']:12.3f} {int(r['rows_written']):6d}"
            )


if __name__ == "__main__":
    main()
