"""lib/ledger: background batches, nothing lost on close, bounded while the database is down,
reports grouped in the database, rows built from the gateway's observer calls."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from lib.ledger import CallContext, LedgerRecorder, LedgerWriter, monthly_spend, usage_report
from lib.ledger.report import month_start, next_month_start
from lib.providers.base import Usage
from lib.providers.gateway import UpstreamCall
from lib.store import Store
from lib.store.schema import usage_ledger
from tests.store.test_keys import UNREACHABLE

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    s.migrate()
    return s


def row(
    key: str = "key_a", model: str = "gpt-4o", ts: datetime | None = None, **kw: object
) -> dict[str, object]:
    ts = ts or datetime(2026, 12, 6, 12, 0)
    out: dict[str, object] = {
        "ts": ts,
        "day": ts.strftime("%Y-%m-%d"),
        "key_id": key,
        "route": "/chat",
        "provider": "openai",
        "model": model,
        "operation": "chat",
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        "latency_ms": 12.5,
        "status": "ok",
        "request_id": "r1",
    }
    out.update(kw)
    return out


def count(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(usage_ledger)).scalar_one())


def test_background_batches_and_close_writes_the_rest(store: Store) -> None:
    writer = LedgerWriter(store.engine, flush_seconds=0.05)
    for _ in range(2500):
        writer.record(row())
    deadline = time.monotonic() + 5
    while count(store) < 2500 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count(store) == 2500
    slow = LedgerWriter(store.engine, flush_seconds=60)  # its loop would not flush for a minute
    for _ in range(7):
        slow.record(row())
    slow.close()
    assert count(store) == 2507 and slow.written == 7
    slow.record(row())  # after close: refused, counted, never silently queued
    assert slow.dropped == 1
    writer.close()


def test_database_down_keeps_rows_then_bounds_memory(store: Store) -> None:
    down = LedgerWriter(Store(UNREACHABLE).engine, flush_seconds=60, queue_max=100)
    for _ in range(150):
        down.record(row())
    assert down.pending == 100 and down.dropped == 50
    assert down.flush() == 0 and down.pending == 100  # kept for the next try
    down.engine = store.engine  # the database is back
    assert down.flush() == 100 and count(store) == 100
    down.close()


def test_reports_group_in_the_database(store: Store) -> None:
    writer = LedgerWriter(store.engine)
    writer.record(row("key_a", "gpt-4o", datetime(2026, 11, 30, 23, 0)))
    writer.record(row("key_a", "gpt-4o-mini", status="timeout", prompt_tokens=0, completion_tokens=0))
    writer.record(row("key_b", "local", cost_usd=None))
    writer.close()
    by_key = usage_report(store.engine, "key")
    assert [(r["key"], r["calls"], r["errors"], r["prompt_tokens"]) for r in by_key] == [
        ("key_a", 2, 1, 10),
        ("key_b", 1, 0, 10),
    ]
    assert by_key[1]["cost_usd"] is None and by_key[0]["name"] == "key_a"
    assert [r["model"] for r in usage_report(store.engine, "model")] == ["gpt-4o", "gpt-4o-mini", "local"]
    by_day = usage_report(store.engine, "day", since=datetime(2026, 12, 1))
    assert [(r["day"], r["calls"]) for r in by_day] == [("2026-12-06", 2)]
    assert usage_report(store.engine, "day", until=datetime(2026, 12, 1), key_id="key_a")[0]["calls"] == 1
    spend = monthly_spend(store.engine, datetime(2026, 12, 20))
    assert spend == {"key_a": pytest.approx(0.001), "key_b": 0.0}


def test_month_boundaries() -> None:
    assert month_start(datetime(2026, 12, 31, 23, 59)) == datetime(2026, 12, 1)
    assert next_month_start(datetime(2026, 12, 31, 23, 59)) == datetime(2027, 1, 1)
    assert next_month_start(datetime(2026, 2, 3)) == datetime(2026, 3, 1)


def test_recorder_prices_tokens_and_charges_the_key(store: Store) -> None:
    writer = LedgerWriter(store.engine)
    charged: list[tuple[str, float]] = []
    context: list[CallContext | None] = [CallContext("key_a", "/v1/chat/completions", "req-9")]
    recorder = LedgerRecorder(writer, lambda: context[0], charge=lambda k, c: charged.append((k, c)))
    recorder.observe_upstream(UpstreamCall("openai", "gpt-4o", "chat", 0.25, Usage(1_000_000, 0), None))
    recorder.observe_upstream(UpstreamCall("openai", "gpt-4o", "chat", 0.25, None, "rate_limited"))
    context[0] = None  # not on behalf of a request: no row
    recorder.observe_upstream(UpstreamCall("openai", "gpt-4o", "chat", 0.25, Usage(5, 5), None))
    writer.close()
    assert charged == [("key_a", pytest.approx(2.5))]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(usage_ledger).order_by(usage_ledger.c.id)).mappings().all()
    assert [(r["status"], r["prompt_tokens"], r["cost_usd"]) for r in rows] == [
        ("ok", 1_000_000, pytest.approx(2.5)),
        ("rate_limited", 0, 0.0),
    ]
    assert rows[0]["request_id"] == "req-9" and rows[0]["latency_ms"] == 250.0


def test_a_row_the_database_refuses_does_not_block_the_others(store: Store) -> None:
    writer = LedgerWriter(store.engine, flush_seconds=60)
    writer.record(row("key_a"))
    writer.record(row(None))  # type: ignore[arg-type] - NOT NULL violated: refused by the database
    writer.record(row("key_b"))
    writer.close()
    assert count(store) == 2 and writer.dropped == 1 and writer.pending == 0


def test_idle_loop_ends_and_the_next_row_starts_it_again(store: Store) -> None:
    writer = LedgerWriter(store.engine, flush_seconds=0.01)
    writer.record(row())
    deadline = time.monotonic() + 5
    while writer._thread is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer._thread is None and count(store) == 1  # written, then the loop ended
    writer.record(row())
    deadline = time.monotonic() + 5
    while count(store) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert count(store) == 2
    writer.close()


def test_a_flush_is_short_transactions_with_the_loop_handed_back_between_them(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lib.ledger.writer as writer_module

    commits: list[int] = []
    handed_back: list[int] = []
    sa.event.listen(store.engine, "commit", lambda conn: commits.append(1))
    writer = LedgerWriter(store.engine, flush_seconds=60)
    monkeypatch.setattr(writer_module, "_let_others_run", lambda: handed_back.append(writer.pending))
    for _ in range(2 * writer_module.BATCH_ROWS + 1):
        writer.record(row())
    assert writer.flush() == 2 * writer_module.BATCH_ROWS + 1
    assert count(store) == 2 * writer_module.BATCH_ROWS + 1
    assert len(commits) == 3  # three transactions ...
    assert handed_back == [writer_module.BATCH_ROWS + 1, 1]  # ... and the loop handed back between them


_GEVENT_FLUSH = """
from gevent import monkey; monkey.patch_all()
import socket, sys, gevent
sys.path.insert(0, sys.argv[1])
from lib.store import Store
from tests.store.test_ledger import row
from lib.ledger import LedgerWriter
store = Store("sqlite:///" + sys.argv[2]); store.migrate()
writer = LedgerWriter(store.engine, flush_seconds=60)
for _ in range(500):
    writer.record(row())
client, server = socket.socketpair()
flushing = True
seen = []
def request():  # another greenlet of the worker, waiting on its socket as a request waits on its upstream
    client.recv(1)
    seen.append((flushing, writer.pending))
other = gevent.spawn(request)
gevent.sleep(0)  # it is waiting on the socket
server.send(b"x")  # its answer has arrived: it is ready once the event loop polls
written = writer.flush()
flushing = False
other.join()
print(written, seen[0][0], seen[0][1])
"""


def test_in_a_gevent_worker_requests_run_while_the_ledger_flushes(tmp_path: Path) -> None:
    """The gevent worker's case for real: a greenlet whose socket became readable runs between the
    flush's transactions, not after the whole flush (as it did with one transaction, or with
    ``sleep(0)`` between transactions: that resumes before the event loop polls the sockets)."""
    run = subprocess.run(
        [sys.executable, "-c", _GEVENT_FLUSH, str(REPO), str(tmp_path / "ledger.db")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    written, during_flush, pending = run.stdout.split()
    assert int(written) == 500
    assert during_flush == "True", "the waiting request ran only after the flush"
    assert 0 < int(pending) < 500
