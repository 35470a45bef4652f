"""The usage ledger writer: one row per upstream call, written off the request path in batches.

Why this shape: a request must not wait for a database write, so ``record`` only appends a small
dict to an in-memory deque (atomic under the GIL, no lock on the hot path) and a background loop
inserts everything queued every ``LEDGER_FLUSH_SECONDS`` in one ``executemany``.

Guarantees (documented in the README):

- Graceful stop (SIGTERM): gunicorn's ``worker_exit`` hook calls ``close()``, which stops the loop
  and writes every queued row before the worker exits -- nothing is lost.
- ``kill -9``: the rows queued since the last flush are lost -- at most one batch
  (``LEDGER_FLUSH_SECONDS`` of traffic).
- Database down: batches stay queued (and are retried each interval) up to ``LEDGER_QUEUE_MAX`` rows;
  beyond that new rows are dropped, counted (``dropped``) and logged once per outage, so memory stays
  bounded.  Requests are never refused because the ledger cannot be written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from lib.store.schema import usage_ledger

log = logging.getLogger(__name__)

#: Rows per transaction. In a gevent worker the writer loop is a greenlet on the worker's event loop, and
#: a database call does not yield: while a transaction runs, every request of the worker waits (SQLite:
#: about 0.2 ms plus 10 µs a row here, so 150 rows held the loop about 1.8 ms). Short transactions, with
#: the loop handed back to the requests between them (``_let_others_run``), keep that wait short.
BATCH_ROWS = 32
#: Empty intervals after which the background loop ends (an idle worker keeps no thread waking up).
IDLE_INTERVALS = 20


def _let_others_run() -> None:
    """Between two transactions of one flush. In a gevent worker (``time`` patched) a sleep longer than
    zero goes through the event loop, which polls the sockets, so requests whose answers have arrived
    run first; ``sleep(0)`` would not do: it resumes before the loop polls (tests/store/test_ledger.py).
    In a plain thread it is a pause of 0.1 ms."""
    time.sleep(0.0001)


class LedgerWriter:
    def __init__(
        self,
        engine: sa.Engine,
        *,
        flush_seconds: float = 0.5,
        queue_max: int = 100_000,
        table: sa.Table = usage_ledger,
        prepare: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        """``table``: where the rows go (the usage ledger; assessment records reuse the same writer).
        ``prepare``: turns what ``record`` queued into the row, in the writer thread, so a caller whose
        row is costly to build (hashes, JSON) queues its inputs and the request path stays an append."""
        self.engine = engine
        self.table = table
        self.prepare = prepare
        self.flush_seconds = flush_seconds
        self.queue_max = queue_max
        self._rows: deque[dict[str, Any]] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._failing = False
        self._closed = False
        self.dropped = 0
        self.written = 0
        #: Called with each row as it is queued (per-caller metrics); must be as cheap as the append.
        self.on_record: Callable[[dict[str, Any]], None] | None = None

    def record(self, row: dict[str, Any]) -> None:
        """Queue one ledger row (hot path: an append)."""
        if self.on_record is not None:
            self.on_record(row)
        if len(self._rows) >= self.queue_max or self._closed:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("ledger: queue full or closed, dropping rows", extra={"dropped": self.dropped})
            return
        self._rows.append(row)
        if self._thread is None:
            self._start()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                name = f"aiproxy-{self.table.name}"
                self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        idle = 0
        while not self._stop.wait(self.flush_seconds):
            idle = 0 if self.flush() else idle + 1
            if idle >= IDLE_INTERVALS:
                with self._start_lock:  # ``record`` starts a new loop when the next row comes
                    if not self._rows:
                        self._thread = None
                        return

    def flush(self) -> int:
        """Write everything queued now; return the rows written (0 and rows kept on failure)."""
        with self._flush_lock:
            written = 0
            while self._rows:
                batch: list[dict[str, Any]] = []
                while self._rows and len(batch) < BATCH_ROWS:
                    batch.append(self._rows.popleft())
                try:
                    with self.engine.begin() as conn:
                        conn.execute(self.table.insert(), self._prepared(batch))
                except (sa.exc.DataError, sa.exc.IntegrityError):
                    # A row the database refuses (not an outage) must not block the ledger forever.
                    self._insert_each(batch)
                except Exception as exc:  # noqa: BLE001 - keep the rows, retry next interval
                    self._rows.extendleft(reversed(batch))
                    if not self._failing:
                        log.error(
                            "ledger: database write failed, rows kept for retry",
                            extra={"error": type(exc).__name__, "pending": len(self._rows)},
                        )
                    self._failing = True
                    break
                if self._failing:
                    log.warning("ledger: database writes work again")
                    self._failing = False
                written += len(batch)
                if self._rows:
                    _let_others_run()
            self.written += written
            return written

    def _prepared(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return batch if self.prepare is None else [self.prepare(row) for row in batch]

    def _insert_each(self, batch: list[dict[str, Any]]) -> None:
        for row in batch:
            try:
                with self.engine.begin() as conn:
                    conn.execute(self.table.insert(), self._prepared([row]))
            except (sa.exc.DataError, sa.exc.IntegrityError) as exc:
                self.dropped += 1
                log.error("ledger: row refused by the database", extra={"error": type(exc).__name__})

    def close(self, timeout: float = 10.0) -> None:
        """Stop the loop and write every queued row (the SIGTERM path)."""
        self._closed = True
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self.flush()
        if self._rows:
            log.error("ledger: rows not written at shutdown", extra={"lost": len(self._rows)})
