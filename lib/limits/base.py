"""The limiter interface: per-caller RPM, TPM and concurrent-request caps.

Window: **sliding, 60 one-second buckets**.  A request counts against RPM for the 60 s that follow
the second it arrived in (so "the N+1th request within any minute is refused", with no double burst
at a fixed minute boundary); tokens count the same way from the second the call finished.  Buckets
keep the state small and constant (at most 60 numbers per caller and measure) in every back end.

TPM is known only after the call (from the upstream's usage), so a request is *pre-checked*: it is
refused while the tokens of the last 60 s already reach the limit, and its own tokens are added
when it ends (``Lease.release``).  Concurrency is a set of leases, each with an expiry, so a worker
that dies holding leases cannot lock a caller out for longer than ``LEASE_TTL_SECONDS``.

Priority: when an upstream throttles, ``note_throttle`` opens a cool-down shared by every worker
(and replica, with Redis); during it, batch-class callers are refused with ``quota`` so that
interactive callers (students and teachers waiting) get the remaining upstream capacity.
"""

from __future__ import annotations

import abc
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lib.errors import QuotaExceededError

log = logging.getLogger("aiproxy.limits")

#: Length of the sliding window (s) and of one bucket (1 s).
WINDOW_SECONDS = 60
#: A concurrency lease not released within this is dropped (a worker that died holding it).
LEASE_TTL_SECONDS = 600
#: Every this many admissions, rows of callers not seen for a minute are dropped.
SWEEP_EVERY = 1000

LimitName = Literal["rpm", "tpm", "concurrency", "batch_backoff"]
Priority = Literal["interactive", "batch"]


@dataclass(frozen=True)
class Limits:
    """One caller's limits; ``None`` = no limit of that kind."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    priority: Priority = "interactive"

    @property
    def unlimited(self) -> bool:
        """Nothing to check or record: the hot path skips the back end entirely."""
        return (
            self.rpm is None
            and self.tpm is None
            and self.concurrency is None
            and self.priority == "interactive"
        )


class LimitsSource(Protocol):
    """Where a caller's limits come from (the root key's settings, the virtual key store)."""

    def limits_for(self, key_id: str) -> Limits: ...


class LimiterUnavailable(Exception):
    """The shared back end (Redis) cannot be reached; the failover limiter answers instead."""


_DETAIL: dict[str, str] = {
    "rpm": "{rpm} requests per minute",
    "tpm": "{tpm} tokens per minute",
    "concurrency": "{concurrency} requests at once",
    "batch_backoff": "batch-class callers back off while the upstream throttles",
}


def refuse(limit: LimitName, label: str, limits: Limits, retry_after: float) -> QuotaExceededError:
    """The one wording of a refusal: the caller's label (a key's name, never a key) and the limit."""
    detail = _DETAIL[limit].format(rpm=limits.rpm, tpm=limits.tpm, concurrency=limits.concurrency)
    return QuotaExceededError(
        f"quota exceeded for {label}: {detail}; retry after {max(1, math.ceil(retry_after))} s",
        limit=limit,
        retry_after=max(retry_after, 0.001),
    )


def live_buckets(buckets: Iterable[tuple[int, int]], cutoff: int) -> list[tuple[int, int]]:
    """The buckets still inside the window (second >= cutoff), oldest first."""
    return sorted((s, a) for s, a in buckets if s >= cutoff)


def retry_after(live: list[tuple[int, int]], allowed: int, now: float) -> float:
    """Seconds until enough of the oldest buckets leave the window for the total to be <= allowed."""
    total = sum(a for _, a in live)
    for second, amount in live:
        total -= amount
        if total <= allowed:
            return max(second + WINDOW_SECONDS - now, 0.001)
    return float(WINDOW_SECONDS)


@dataclass
class Lease:
    """One admitted request.  Tokens reported during the call are added at ``release`` (idempotent),
    which also frees the concurrency slot."""

    limiter: StoreLimiter
    subject: str
    limits: Limits
    lease_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    tokens: int = 0
    released: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add_tokens(self, count: int) -> None:
        if count > 0:
            with self._lock:
                self.tokens += count

    def release(self) -> None:
        with self._lock:
            if self.released:
                return
            self.released = True
        if self.limits.tpm is None and self.limits.concurrency is None:
            return
        try:
            self.limiter.finish(self)
        except LimiterUnavailable:
            # The shared store went away mid-request: the lease expires there on its own.
            log.debug("could not release a lease: limiter back end unavailable")


class Limiter(abc.ABC):
    """Admit or refuse a request for a caller (``subject``: ``root``, ``key:<id>``, ``sub:<user>``)."""

    #: Back-end name for logs and metrics (``redis``, ``sqlite``, ``memory``).
    name = "limiter"

    @abc.abstractmethod
    def acquire(self, subject: str, limits: Limits, *, label: str | None = None) -> Lease:
        """Admit one request or raise ``QuotaExceededError`` (429, ``Retry-After``); ``label`` names
        the caller in the refusal (a key's name, never the key)."""

    @abc.abstractmethod
    def note_throttle(self, seconds: float) -> None:
        """An upstream throttled us: refuse batch-class callers for ``seconds``."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (tests, shutdown)."""


class StoreLimiter(Limiter):
    """A limiter over one store; its leases come back to it at ``finish``."""

    def now(self) -> float:
        """Wall-clock seconds (shared by every replica through NTP; tests replace it)."""
        return time.time()

    def acquire(self, subject: str, limits: Limits, *, label: str | None = None) -> Lease:
        lease = Lease(self, subject, limits)
        if limits.unlimited:
            return lease
        self.admit(lease, self.now(), label or subject)
        return lease

    @abc.abstractmethod
    def admit(self, lease: Lease, now: float, label: str) -> None:
        """Check every limit of ``lease.limits`` and count the request, atomically."""

    @abc.abstractmethod
    def finish(self, lease: Lease) -> None:
        """Add the lease's tokens to its TPM window and free its concurrency slot."""


class BucketLimiter(StoreLimiter):
    """The bucket algorithm once, for back ends that can run it inside one transaction (SQLite,
    process memory); Redis runs the same steps in a Lua script."""

    _admitted = 0

    @abc.abstractmethod
    def _transaction(self) -> _Txn:
        """A context manager around one atomic read-modify-write of the store."""

    @abc.abstractmethod
    def sweep(self, now: float) -> None:
        """Drop every caller's expired buckets and leases (callers never seen again leave them)."""

    def admit(self, lease: Lease, now: float, label: str) -> None:
        self._admitted += 1
        if self._admitted % SWEEP_EVERY == 0:
            self.sweep(now)
        limits = lease.limits
        second = int(now)
        cutoff = second - WINDOW_SECONDS + 1
        with self._transaction() as txn:
            if limits.priority == "batch":
                until = txn.cooldown_until()
                if until > now:
                    raise refuse("batch_backoff", label, limits, until - now)
            if limits.rpm is not None:
                live = live_buckets(txn.buckets(lease.subject, "req", cutoff), cutoff)
                if sum(a for _, a in live) + 1 > limits.rpm:
                    wait = retry_after(live, limits.rpm - 1, now)
                    raise refuse("rpm", label, limits, wait)
            if limits.tpm is not None:
                live = live_buckets(txn.buckets(lease.subject, "tok", cutoff), cutoff)
                if sum(a for _, a in live) >= limits.tpm:
                    wait = retry_after(live, limits.tpm - 1, now)
                    raise refuse("tpm", label, limits, wait)
            if limits.concurrency is not None:
                if txn.live_leases(lease.subject, now) >= limits.concurrency:
                    raise refuse("concurrency", label, limits, 1.0)
                txn.add_lease(lease.subject, lease.lease_id, now + LEASE_TTL_SECONDS)
            if limits.rpm is not None:
                txn.add(lease.subject, "req", second, 1)

    def finish(self, lease: Lease) -> None:
        now = self.now()
        with self._transaction() as txn:
            if lease.limits.tpm is not None and lease.tokens > 0:
                txn.add(lease.subject, "tok", int(now), lease.tokens)
            if lease.limits.concurrency is not None:
                txn.drop_lease(lease.subject, lease.lease_id)

    def note_throttle(self, seconds: float) -> None:
        with self._transaction() as txn:
            txn.set_cooldown(self.now() + seconds)


class _Txn(Protocol):
    """The store operations ``BucketLimiter`` needs, valid inside one transaction."""

    def __enter__(self) -> _Txn: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None: ...

    def buckets(self, subject: str, measure: str, cutoff: int) -> Iterable[tuple[int, int]]:
        """This subject's buckets of ``measure``; buckets older than ``cutoff`` may be dropped."""
        ...

    def add(self, subject: str, measure: str, second: int, amount: int) -> None: ...

    def live_leases(self, subject: str, now: float) -> int:
        """Unexpired leases of this subject (expired ones may be dropped)."""
        ...

    def add_lease(self, subject: str, lease_id: str, expires: float) -> None: ...

    def drop_lease(self, subject: str, lease_id: str) -> None: ...

    def cooldown_until(self) -> float: ...

    def set_cooldown(self, until: float) -> None: ...
