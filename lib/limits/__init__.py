"""Per-caller request limits (RPM, TPM, concurrency) shared across workers and replicas.

``build_limiter(settings)`` picks the store: Redis when ``REDIS_URL`` is set (with the per-replica
SQLite file as the fallback while Redis is down), else the SQLite file (every worker on one box),
or process memory when ``LIMITS_BACKEND=memory``.  See ``lib/limits/base.py`` for the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lib.limits.base import (
    Lease,
    Limiter,
    LimiterUnavailable,
    Limits,
    LimitsSource,
    StoreLimiter,
)
from lib.limits.failover import FailoverLimiter
from lib.limits.memory import MemoryLimiter
from lib.limits.sqlite import SqliteLimiter
from lib.settings import Settings, SettingsError

__all__ = [
    "FailoverLimiter",
    "Lease",
    "Limiter",
    "LimiterUnavailable",
    "Limits",
    "LimitsSource",
    "MemoryLimiter",
    "SqliteLimiter",
    "StoreLimiter",
    "build_limiter",
]


def sqlite_path(settings: Settings) -> Path:
    return Path(settings.limits_sqlite_path or settings.data_dir / "limits.db")


def build_limiter(settings: Settings, *, on_fallback: Callable[[], None] | None = None) -> Limiter:
    backend = settings.limits_backend
    redis_url = settings.redis_url.get_secret_value() if settings.redis_url else None
    if backend == "memory":
        return MemoryLimiter()
    if backend == "redis" or (backend == "auto" and redis_url):
        if not redis_url:
            raise SettingsError("LIMITS_BACKEND=redis needs REDIS_URL")
        from lib.limits.redis_limiter import RedisLimiter

        return FailoverLimiter(
            RedisLimiter(redis_url), SqliteLimiter(sqlite_path(settings)), on_fallback=on_fallback
        )
    # A file that cannot be written (disk full, permissions) degrades to per-worker counts.
    return FailoverLimiter(SqliteLimiter(sqlite_path(settings)), MemoryLimiter(), on_fallback=on_fallback)
