"""``RECORD_RETENTION_DAYS``: assessment records (and their feedback) older than that are deleted.

Why a job in every worker: no scheduler is assumed to exist beside the service.  The delete is
idempotent, so several workers and replicas running it at once only repeat a no-op; the admin CLI
(``aiproxy-admin records purge``) runs the same function on demand.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import sqlalchemy as sa

from lib.feedback.records import utcnow
from lib.store.assessment_schema import assessment_feedback, assessment_records

log = logging.getLogger(__name__)


def delete_expired(engine: sa.Engine, days: int, *, now: datetime | None = None) -> tuple[int, int]:
    """Delete records created more than ``days`` ago and their feedback; (records, feedback) deleted."""
    cutoff = (now or utcnow()) - timedelta(days=days)
    expired = sa.select(assessment_records.c.id).where(assessment_records.c.created_at < cutoff)
    with engine.begin() as conn:
        feedback = conn.execute(
            assessment_feedback.delete().where(assessment_feedback.c.assessment_id.in_(expired))
        ).rowcount
        records = conn.execute(
            assessment_records.delete().where(assessment_records.c.created_at < cutoff)
        ).rowcount
    return int(records or 0), int(feedback or 0)


class RetentionJob:
    """Runs ``delete_expired`` every ``interval`` seconds in a daemon thread (first run at start)."""

    def __init__(self, engine: sa.Engine, days: int, interval: float) -> None:
        self.engine = engine
        self.days = days
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aiproxy-record-retention", daemon=True)

    def start(self) -> RetentionJob:
        self._thread.start()
        return self

    def run_once(self) -> tuple[int, int]:
        try:
            deleted = delete_expired(self.engine, self.days)
        except Exception as exc:  # noqa: BLE001 - the database may be down; try again next interval
            log.warning("record retention: delete failed", extra={"error": type(exc).__name__})
            return (0, 0)
        if any(deleted):
            log.info("record retention: deleted", extra={"records": deleted[0], "feedback": deleted[1]})
        return deleted

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
