"""Redis first, the per-replica store when Redis cannot be reached.

A limit store outage must not become an outage of the service: while Redis is down, checks are
answered by the fallback (SQLite on this box, so limits still hold across this replica's workers,
each replica counting alone).  The first failure of an outage is logged once at WARNING; every
check answered by the fallback calls ``on_fallback`` (a Prometheus counter); Redis is tried again
``retry_seconds`` after a failure (so a dead Redis costs one failed connect per retry interval, not
one per request) and its return is logged at INFO.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from lib.limits.base import Lease, Limiter, LimiterUnavailable, Limits, StoreLimiter

log = logging.getLogger("aiproxy.limits")


class FailoverLimiter(Limiter):
    def __init__(
        self,
        primary: StoreLimiter,
        fallback: StoreLimiter,
        *,
        on_fallback: Callable[[], None] | None = None,
        retry_seconds: float = 5.0,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.on_fallback = on_fallback
        self.retry_seconds = retry_seconds
        self.name = primary.name
        self._down_until = 0.0
        self._down = False
        self._lock = threading.Lock()

    @property
    def degraded(self) -> bool:
        """True while checks are answered per replica."""
        return self._down

    def _primary_usable(self) -> bool:
        return time.monotonic() >= self._down_until

    def _mark_down(self, exc: LimiterUnavailable) -> None:
        with self._lock:
            first = not self._down
            self._down = True
            self._down_until = time.monotonic() + self.retry_seconds
        if first:
            log.warning(
                "limit store unreachable: limits are per replica until it returns",
                extra={"backend": self.primary.name, "fallback": self.fallback.name, "error": str(exc)},
            )

    def _mark_up(self) -> None:
        if self._down:
            with self._lock:
                self._down = False
            log.info("limit store reachable again: limits are shared", extra={"backend": self.primary.name})

    def acquire(self, subject: str, limits: Limits, *, label: str | None = None) -> Lease:
        if limits.unlimited:
            return self.fallback.acquire(subject, limits, label=label)  # touches no store
        if self._primary_usable():
            try:
                lease = self.primary.acquire(subject, limits, label=label)
            except LimiterUnavailable as exc:
                self._mark_down(exc)
            else:
                self._mark_up()
                return lease
        if self.on_fallback is not None:
            self.on_fallback()
        return self.fallback.acquire(subject, limits, label=label)

    def note_throttle(self, seconds: float) -> None:
        if self._primary_usable():
            try:
                self.primary.note_throttle(seconds)
                return
            except LimiterUnavailable as exc:
                self._mark_down(exc)
        self.fallback.note_throttle(seconds)

    def close(self) -> None:
        self.primary.close()
        self.fallback.close()
