"""In-process limiter: the fallback of the last resort (each worker process counts alone).

Used when ``LIMITS_BACKEND=memory`` and by tests; a shared store (Redis, or SQLite on one box) is
what makes limits hold across workers and replicas.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from lib.limits.base import WINDOW_SECONDS, BucketLimiter


class _MemoryTxn:
    def __init__(self, owner: MemoryLimiter) -> None:
        self._owner = owner

    def __enter__(self) -> _MemoryTxn:
        self._owner._lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self._owner._lock.release()

    def buckets(self, subject: str, measure: str, cutoff: int) -> Iterable[tuple[int, int]]:
        store = self._owner._buckets.get((subject, measure))
        if not store:
            return ()
        for second in [s for s in store if s < cutoff]:
            del store[second]
        return list(store.items())

    def add(self, subject: str, measure: str, second: int, amount: int) -> None:
        store = self._owner._buckets.setdefault((subject, measure), {})
        store[second] = store.get(second, 0) + amount

    def live_leases(self, subject: str, now: float) -> int:
        leases = self._owner._leases.get(subject)
        if not leases:
            return 0
        for lease_id in [k for k, expires in leases.items() if expires <= now]:
            del leases[lease_id]
        return len(leases)

    def add_lease(self, subject: str, lease_id: str, expires: float) -> None:
        self._owner._leases.setdefault(subject, {})[lease_id] = expires

    def drop_lease(self, subject: str, lease_id: str) -> None:
        self._owner._leases.get(subject, {}).pop(lease_id, None)

    def cooldown_until(self) -> float:
        return self._owner._cooldown_until

    def set_cooldown(self, until: float) -> None:
        self._owner._cooldown_until = max(self._owner._cooldown_until, until)


class MemoryLimiter(BucketLimiter):
    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], dict[int, int]] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._cooldown_until = 0.0

    def _transaction(self) -> _MemoryTxn:
        return _MemoryTxn(self)

    def sweep(self, now: float) -> None:
        cutoff = int(now) - WINDOW_SECONDS
        with self._lock:
            for key in [k for k, b in self._buckets.items() if not b or max(b) < cutoff]:
                del self._buckets[key]
            for subject in [
                s for s, leases in self._leases.items() if all(e <= now for e in leases.values())
            ]:
                del self._leases[subject]
