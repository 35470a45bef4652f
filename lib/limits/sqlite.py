"""SQLite limiter: one file shared by every gunicorn worker on one box (and the per-replica fallback
when Redis is down).

Each check is one ``BEGIN IMMEDIATE`` transaction: it takes the file's write lock first, so two
workers can never both read "4 of 5" and both admit.  The file holds only counters of the last
minute, so it runs with ``synchronous=OFF`` (a power cut loses at most the last minute of counts,
never the database) in WAL mode.  One connection per process, opened after gunicorn forks.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from lib.limits.base import WINDOW_SECONDS, BucketLimiter, LimiterUnavailable

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS limit_bucket (subject TEXT NOT NULL, measure TEXT NOT NULL, "
    "second INTEGER NOT NULL, amount INTEGER NOT NULL, PRIMARY KEY (subject, measure, second)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS limit_lease (subject TEXT NOT NULL, lease TEXT NOT NULL, "
    "expires REAL NOT NULL, PRIMARY KEY (subject, lease)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS limit_cooldown (name TEXT PRIMARY KEY, until REAL NOT NULL)",
)


class _SqliteTxn:
    def __init__(self, conn: sqlite3.Connection, lock: threading.Lock) -> None:
        self._conn = conn
        self._lock = lock

    def __enter__(self) -> _SqliteTxn:
        self._lock.acquire()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            self._lock.release()
            raise LimiterUnavailable(f"sqlite: {exc}") from exc
        except BaseException:
            self._lock.release()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            # A refusal (QuotaExceededError) keeps its pruning; a database error undoes everything.
            failed = exc_type is not None and issubclass(exc_type, sqlite3.Error)
            self._conn.execute("ROLLBACK" if failed else "COMMIT")
        except sqlite3.Error as err:
            raise LimiterUnavailable(f"sqlite: {err}") from err
        finally:
            self._lock.release()
        if failed:
            raise LimiterUnavailable(f"sqlite: {exc}") from exc

    def buckets(self, subject: str, measure: str, cutoff: int) -> Iterable[tuple[int, int]]:
        self._conn.execute(
            "DELETE FROM limit_bucket WHERE subject = ? AND measure = ? AND second < ?",
            (subject, measure, cutoff),
        )
        rows = self._conn.execute(
            "SELECT second, amount FROM limit_bucket WHERE subject = ? AND measure = ?",
            (subject, measure),
        ).fetchall()
        return [(int(s), int(a)) for s, a in rows]

    def add(self, subject: str, measure: str, second: int, amount: int) -> None:
        self._conn.execute(
            "INSERT INTO limit_bucket (subject, measure, second, amount) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (subject, measure, second) DO UPDATE SET amount = amount + excluded.amount",
            (subject, measure, second, amount),
        )

    def live_leases(self, subject: str, now: float) -> int:
        self._conn.execute("DELETE FROM limit_lease WHERE subject = ? AND expires <= ?", (subject, now))
        row = self._conn.execute("SELECT COUNT(*) FROM limit_lease WHERE subject = ?", (subject,)).fetchone()
        return int(row[0])

    def add_lease(self, subject: str, lease_id: str, expires: float) -> None:
        self._conn.execute(
            "INSERT INTO limit_lease (subject, lease, expires) VALUES (?, ?, ?)", (subject, lease_id, expires)
        )

    def drop_lease(self, subject: str, lease_id: str) -> None:
        self._conn.execute("DELETE FROM limit_lease WHERE subject = ? AND lease = ?", (subject, lease_id))

    def cooldown_until(self) -> float:
        row = self._conn.execute("SELECT until FROM limit_cooldown WHERE name = 'batch'").fetchone()
        return float(row[0]) if row else 0.0

    def set_cooldown(self, until: float) -> None:
        self._conn.execute(
            "INSERT INTO limit_cooldown (name, until) VALUES ('batch', ?) "
            "ON CONFLICT (name) DO UPDATE SET until = max(until, excluded.until)",
            (until,),
        )


class SqliteLimiter(BucketLimiter):
    name = "sqlite"

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._pid = 0  # the connection is opened on first use, in the worker process

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves.
        conn = sqlite3.connect(self.path, timeout=5.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        for statement in _SCHEMA:
            conn.execute(statement)
        self._conn, self._pid = conn, os.getpid()
        return conn

    def _transaction(self) -> _SqliteTxn:
        try:
            conn = self._connect()
        except (OSError, sqlite3.Error) as exc:
            raise LimiterUnavailable(f"sqlite: {exc}") from exc
        return _SqliteTxn(conn, self._lock)

    def sweep(self, now: float) -> None:
        with self._transaction() as txn:
            txn._conn.execute("DELETE FROM limit_bucket WHERE second < ?", (int(now) - WINDOW_SECONDS,))
            txn._conn.execute("DELETE FROM limit_lease WHERE expires <= ?", (now,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
