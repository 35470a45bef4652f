"""Assessment records: one row per ``/assessment`` answer, written off the request path.

Why: teachers accept or correct the AI's labels; to measure production accuracy, build datasets and
fine-tune from those corrections, each answer must be findable later by the ``assessment_id`` it
carries.  The row is queued in memory and inserted in background batches by the usage ledger's writer
(``lib.ledger.writer.LedgerWriter`` on another table), so an assessment never waits for the database;
a graceful stop writes every queued row (gunicorn's ``worker_exit``).

Privacy: the student's program -- and the answer's text, whose evidence quotes it -- is stored only
when ``STORE_STUDENT_CODE=1``; otherwise only the program's SHA-256, which lets feedback that sends
the code later prove it is the same program.  Rows older than
``RECORD_RETENTION_DAYS`` are deleted with their feedback (``lib.feedback.retention``).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TypeVar

import sqlalchemy as sa

from lib.assessment.types import AssessmentRequest, AssessmentResult
from lib.ledger import LedgerWriter
from lib.store.assessment_schema import assessment_feedback, assessment_records


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def new_assessment_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def parse_since(text: str) -> datetime:
    """A UTC date (its midnight) or an ISO 8601 time, as the naive UTC records store; ValueError."""
    try:
        return datetime.combine(date.fromisoformat(text), time())
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 date or time: {text[:40]!r}") from None
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)


def record_row(
    assessment_id: str,
    request: AssessmentRequest,
    result: AssessmentResult,
    *,
    key_id: str,
    store_code: bool,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The ``assessment_records`` row of one answer (the code only when ``store_code``)."""
    usage = result.metadata.get("usage") or {}
    return {
        "id": assessment_id,
        "created_at": now or utcnow(),
        "key_id": key_id[:128],
        "lesson": (request.lesson or "")[:200],
        "model": str(result.metadata.get("model", request.model))[:200],
        "agent": str(result.metadata.get("agent", ""))[:200],
        "prompt_sha256": sha256(request.prompt),
        "rubric_sha256": sha256(request.rubric),
        "code_sha256": sha256(request.code),
        "prompt": request.prompt,
        "rubric": request.rubric,
        "examples": json.dumps([list(pair) for pair in request.examples], ensure_ascii=False),
        "remove_comments": bool(request.remove_comments),
        "key_concepts": json.dumps([row["Key Concept"] for row in result.data], ensure_ascii=False),
        "ai_labels": json.dumps(
            {row["Key Concept"]: row["Label"] for row in result.data}, ensure_ascii=False
        ),
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "latency_ms": round(float(result.metadata.get("time", 0.0)) * 1000, 3),
        "code": request.code if store_code else None,
        "answer": json.dumps(result.data, ensure_ascii=False) if store_code else None,
    }


@dataclass(frozen=True)
class AssessmentRecord:
    """A stored record as the feedback, accuracy, dataset and fine-tuning code read it."""

    id: str
    created_at: datetime
    lesson: str
    model: str
    prompt: str
    rubric: str
    rubric_sha256: str
    prompt_sha256: str
    code_sha256: str
    examples: tuple[tuple[str, str], ...]
    remove_comments: bool
    key_concepts: tuple[str, ...]
    ai_labels: dict[str, str]
    code: str | None
    #: the answer rows, only with STORE_STUDENT_CODE=1 (else empty)
    answer: tuple[dict[str, str], ...] = ()

    @classmethod
    def from_row(cls, row: Any) -> AssessmentRecord:
        """From a full row, or a ``light`` one (the texts left out read as empty)."""
        m = row._mapping
        answer = m.get("answer")
        return cls(
            id=m["id"],
            created_at=m["created_at"],
            lesson=m["lesson"],
            model=m["model"],
            prompt=m.get("prompt", ""),
            rubric=m.get("rubric", ""),
            rubric_sha256=m["rubric_sha256"],
            prompt_sha256=m["prompt_sha256"],
            code_sha256=m["code_sha256"],
            examples=tuple((str(a), str(b)) for a, b in json.loads(m.get("examples", "[]"))),
            remove_comments=bool(m["remove_comments"]),
            key_concepts=tuple(json.loads(m["key_concepts"])),
            ai_labels=dict(json.loads(m["ai_labels"])),
            code=m.get("code"),
            answer=tuple(json.loads(answer)) if answer else (),
        )


def load_record(engine: sa.Engine, assessment_id: str) -> AssessmentRecord | None:
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(assessment_records).where(assessment_records.c.id == assessment_id)
        ).first()
    return AssessmentRecord.from_row(row) if row is not None else None


_Query = TypeVar("_Query", bound=sa.Select[Any])
#: the large columns a ``light`` query leaves out (accuracy needs only labels, lesson and time)
_TEXTS = frozenset({"prompt", "rubric", "examples", "code", "answer"})


def in_window(query: _Query, *, lesson: str | None, since: datetime | None) -> _Query:
    """``query`` restricted to one lesson and/or assessments since a time."""
    if lesson is not None:
        query = query.where(assessment_records.c.lesson == lesson)
    if since is not None:
        query = query.where(assessment_records.c.created_at >= since)
    return query


def count_records(engine: sa.Engine, *, lesson: str | None = None, since: datetime | None = None) -> int:
    query = in_window(sa.select(sa.func.count()).select_from(assessment_records), lesson=lesson, since=since)
    with engine.connect() as conn:
        return int(conn.execute(query).scalar_one())


def query_records(
    engine: sa.Engine,
    *,
    lesson: str | None = None,
    since: datetime | None = None,
    with_code: bool = False,
    light: bool = False,
) -> list[AssessmentRecord]:
    """Records that have feedback, in creation order, optionally of one lesson, since a time, only
    those with code; ``light`` leaves the large text columns in the database."""
    t = assessment_records
    columns = [c for c in t.c if not (light and c.name in _TEXTS)]
    judged = sa.select(assessment_feedback.c.assessment_id)
    query = sa.select(*columns).where(t.c.id.in_(judged)).order_by(t.c.created_at, t.c.id)
    query = in_window(query, lesson=lesson, since=since)
    if with_code:
        query = query.where(t.c.code.is_not(None))
    with engine.connect() as conn:
        return [AssessmentRecord.from_row(row) for row in conn.execute(query)]


class AssessmentRecorder:
    """Queues records (``record``) and finds them (``find``: flushes this worker's queue first when
    the id is not in the database yet, so feedback right after an answer from the same worker works)."""

    def __init__(
        self, engine: sa.Engine, *, store_code: bool, flush_seconds: float = 0.5, queue_max: int = 100_000
    ) -> None:
        self.engine = engine
        self.store_code = store_code
        self.writer = LedgerWriter(
            engine,
            flush_seconds=flush_seconds,
            queue_max=queue_max,
            table=assessment_records,
            prepare=self._row,
        )

    def record(self, request: AssessmentRequest, result: AssessmentResult, *, key_id: str) -> str:
        """Queue the inputs (an append); the row (hashes, JSON) is built in the writer thread."""
        assessment_id = new_assessment_id()
        self.writer.record({"id": assessment_id, "inputs": (request, result, key_id, utcnow())})
        return assessment_id

    def _row(self, queued: dict[str, Any]) -> dict[str, Any]:
        request, result, key_id, now = queued["inputs"]
        return record_row(queued["id"], request, result, key_id=key_id, store_code=self.store_code, now=now)

    def find(self, assessment_id: str) -> AssessmentRecord | None:
        found = load_record(self.engine, assessment_id)
        if found is None and self.writer.pending:
            self.writer.flush()
            found = load_record(self.engine, assessment_id)
        return found

    def close(self) -> None:
        self.writer.close()
