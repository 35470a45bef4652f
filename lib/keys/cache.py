"""Every worker's in-memory copy of the keys and of each key's spend this month.

Why a cache: the hot path (every request) must not touch the database -- a lookup is one HMAC and
one dict access.  Why it stays correct:

- **Revocation within 5 s**: a background loop reloads every key (a small table) and the month's
  spend per key every ``KEY_CACHE_REFRESH_SECONDS`` (at most 5), on every worker of every replica.
- **Database down**: the last good copy is kept in memory and persisted (atomically: temp file +
  rename) to ``DATA_DIR/keys-cache.json``.  A worker that starts while the database is down loads that
  file, so a valid key is never refused because the database is unreachable; the loop keeps trying
  and logs each outage once.  The file holds hashes and settings, never a plaintext key.
- **Budgets**: spend comes from the ledger (``lib.ledger.report.monthly_spend``) at each refresh;
  between refreshes this worker adds what it records itself (``add_spend``), so a key cannot overspend
  by more than other workers' spend of one refresh interval.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from lib.keys.model import KeyRecord
from lib.keys.repository import KeyRepository

log = logging.getLogger(__name__)

SpendSource = Callable[[], dict[str, float]]
#: Unknown secrets remembered at most (then forgotten all at once; they are only a shield).
_MAX_MISSES = 10_000


class KeyCache:
    def __init__(
        self,
        repo: KeyRepository,
        *,
        cache_file: Path,
        refresh_seconds: float = 2.0,
        spend_source: SpendSource | None = None,
    ) -> None:
        self.repo = repo
        self.cache_file = cache_file
        self.refresh_seconds = refresh_seconds
        self._spend_source = spend_source
        self._by_hash: dict[str, KeyRecord] = {}
        self._by_id: dict[str, KeyRecord] = {}
        self._misses: dict[str, float] = {}  # hash of an unknown secret -> when to ask again
        self._spend: dict[str, float] = {}
        self._loaded = False
        self._healthy = True
        self._started = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.last_refresh: float | None = None

    # --- hot path -------------------------------------------------------------------------------
    def lookup(self, plaintext: str) -> KeyRecord | None:
        """The key whose secret is ``plaintext`` (active, expired or revoked), or None.

        A key created since the last refresh is found with one indexed query, so a new key works
        at once; unknown secrets are remembered for one refresh interval, so a client retrying a
        wrong key cannot turn every request into a database query."""
        if not self._started:
            self.start()
        digest = self.repo.hash(plaintext)
        record = self._by_hash.get(digest)
        if record is not None or not self._healthy:
            return record
        now = time.monotonic()
        if self._misses.get(digest, 0.0) > now:
            return None
        try:
            record = self.repo.find_by_hash(digest)
        except Exception:  # noqa: BLE001 - the refresh loop reports outages; a miss stays a miss
            record = None
        if record is None:
            if len(self._misses) >= _MAX_MISSES:
                self._misses.clear()
            self._misses[digest] = now + self.refresh_seconds
            return None
        self._by_hash[digest] = record
        self._by_id[record.id] = record
        return record

    def by_id(self, key_id: str) -> KeyRecord | None:
        """The cached key with this id (limiters read a key's RPM/TPM/concurrency from it)."""
        return self._by_id.get(key_id)

    def spend(self, key_id: str) -> float:
        return self._spend.get(key_id, 0.0)

    def add_spend(self, key_id: str, usd: float) -> None:
        self._spend[key_id] = self._spend.get(key_id, 0.0) + usd

    # --- loading --------------------------------------------------------------------------------
    def start(self) -> None:
        """First load (database, else the cache file), then the refresh loop in the background."""
        with self._lock:
            if self._started:
                return
            self._started = True
            if not self.refresh():
                self._load_file()
            thread = threading.Thread(target=self._loop, name="aiproxy-key-cache", daemon=True)
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            self.refresh()

    def refresh(self) -> bool:
        """Reload keys and spend from the database; False (and the old copy kept) when it fails."""
        try:
            records = self.repo.all()
            spend = self._spend_source() if self._spend_source is not None else {}
        except Exception as exc:  # noqa: BLE001 - any database failure keeps the last good copy
            if self._healthy:
                log.error(
                    "key cache: database unavailable, serving the last loaded keys",
                    extra={"error": type(exc).__name__, "database": self.repo.store.describe()},
                )
            self._healthy = False
            return False
        by_hash = {r.key_hash: r for r in records}
        changed = by_hash != self._by_hash
        self._by_hash = by_hash
        self._by_id = {r.id: r for r in records}
        self._spend = spend
        self._loaded = True
        self.last_refresh = time.monotonic()
        if not self._healthy:
            log.warning("key cache: database reachable again", extra={"keys": len(by_hash)})
        self._healthy = True
        if changed:
            self._save_file(records)
        return True

    @property
    def healthy(self) -> bool:
        return self._healthy

    def _save_file(self, records: list[KeyRecord]) -> None:
        payload = {"version": 1, "keys": [_jsonable(r.to_row()) for r in records]}
        try:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".keys-cache-", dir=self.cache_file.parent)
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.cache_file)
        except OSError as exc:
            log.warning("key cache: could not write the cache file", extra={"error": str(exc)})
            with contextlib.suppress(OSError, UnboundLocalError):
                os.unlink(tmp)

    def _load_file(self) -> None:
        try:
            payload = json.loads(self.cache_file.read_text())
            records = [KeyRecord.from_row(row) for row in payload["keys"]]
        except FileNotFoundError:
            log.error("key cache: database unavailable and no cache file yet; only the root key works")
            return
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("key cache: unreadable cache file", extra={"error": type(exc).__name__})
            return
        self._by_hash = {r.key_hash: r for r in records}
        self._by_id = {r.id: r for r in records}
        log.warning("key cache: serving keys from the cache file", extra={"keys": len(records)})


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in row.items()}
