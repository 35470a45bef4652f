"""Teacher feedback on one assessment: validated, idempotent, all-or-nothing.

One submission names an assessment, a teacher reference and, per key concept, the teacher's label
and/or a thumbs up/down, with an optional comment and optionally the student's code.

Rules (each refusal names the field, and nothing is written when any part is refused):

- ``assessment_id`` must name a stored record (``FeedbackNotFoundError``, 404);
- a key concept must be one of that assessment's rubric key concepts (spelling tolerant as the
  pipeline's: case, spacing and smart quotes ignored), a label one of the four labels, thumbs ``up``
  or ``down``; each entry needs a label or thumbs (400);
- ``code``, when sent, must be the program that was assessed (its SHA-256 is in the record); it is
  stored only with ``STORE_STUDENT_CODE=1`` and only if the record has no code yet;
- idempotent per (assessment, key concept, teacher): sending the same values again changes nothing
  (``unchanged``); different values for a pair already stored are a conflict (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from lib.assessment.rubric import parse_rubric
from lib.assessment.types import LABELS
from lib.errors import InvalidRequestError
from lib.feedback.records import AssessmentRecord, sha256, utcnow
from lib.store.assessment_schema import assessment_feedback, assessment_records

THUMBS: tuple[str, ...] = ("up", "down")
MAX_TEACHER = 200
MAX_COMMENT = 4000


class FeedbackNotFoundError(InvalidRequestError):
    """No assessment record with that id (404)."""

    kind = "not_found"


class FeedbackConflictError(InvalidRequestError):
    """Feedback for that (assessment, key concept, teacher) is stored with other values (409)."""

    kind = "conflict"


@dataclass(frozen=True)
class ConceptFeedback:
    key_concept: str
    label: str | None = None
    thumbs: str | None = None


@dataclass(frozen=True)
class Feedback:
    assessment_id: str
    teacher: str
    concepts: tuple[ConceptFeedback, ...]
    comment: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class SaveResult:
    created: tuple[str, ...]
    unchanged: tuple[str, ...]

    def as_dict(self, assessment_id: str) -> dict[str, Any]:
        return {
            "assessment_id": assessment_id,
            "created": list(self.created),
            "unchanged": list(self.unchanged),
        }


def _check_shape(fb: Feedback) -> None:
    if not fb.assessment_id or not fb.assessment_id.strip():
        raise InvalidRequestError("assessment_id is required", field="assessment_id")
    if not fb.teacher.strip() or len(fb.teacher) > MAX_TEACHER:
        raise InvalidRequestError(f"teacher must be 1..{MAX_TEACHER} characters", field="teacher")
    if fb.comment is not None and len(fb.comment) > MAX_COMMENT:
        raise InvalidRequestError(f"comment is longer than {MAX_COMMENT} characters", field="comment")
    if not fb.concepts:
        raise InvalidRequestError("key_concepts needs at least one entry", field="key_concepts")
    texts = {"teacher": fb.teacher, "comment": fb.comment or "", "code": fb.code or ""}
    texts.update({f"key_concepts.{i}.key_concept": c.key_concept for i, c in enumerate(fb.concepts)})
    for name, text in texts.items():
        if "\x00" in text:  # PostgreSQL text cannot hold NUL; no real field contains one
            raise InvalidRequestError(f"{name} contains a NUL character", field=name)


def validate(fb: Feedback, record: AssessmentRecord) -> list[ConceptFeedback]:
    """The entries with the rubric's own key concept spelling; raises ``InvalidRequestError``."""
    _check_shape(fb)
    rubric = parse_rubric(record.rubric)
    out: list[ConceptFeedback] = []
    seen: set[str] = set()
    for i, item in enumerate(fb.concepts):
        where = f"key_concepts.{i}"
        kc = rubric.lookup(item.key_concept) if item.key_concept else None
        if kc is None:
            raise InvalidRequestError(
                f"{where}.key_concept {item.key_concept[:80]!r} is not a key concept of this "
                f"assessment's rubric ({'; '.join(rubric.key_concepts)})",
                field=f"{where}.key_concept",
            )
        if kc in seen:
            raise InvalidRequestError(
                f"{where}.key_concept {kc!r} is listed twice", field=f"{where}.key_concept"
            )
        seen.add(kc)
        if item.label is None and item.thumbs is None:
            raise InvalidRequestError(f"{where} needs a label or thumbs", field=f"{where}.label")
        if item.label is not None and item.label not in LABELS:
            raise InvalidRequestError(
                f"{where}.label must be one of: {', '.join(LABELS)}", field=f"{where}.label"
            )
        if item.thumbs is not None and item.thumbs not in THUMBS:
            raise InvalidRequestError(f"{where}.thumbs must be 'up' or 'down'", field=f"{where}.thumbs")
        out.append(ConceptFeedback(kc, item.label, item.thumbs))
    if fb.code is not None and sha256(fb.code) != record.code_sha256:
        raise InvalidRequestError("code is not the program this assessment graded", field="code")
    return out


def _existing(conn: sa.Connection, fb: Feedback) -> dict[str, tuple[str | None, str | None, str | None]]:
    t = assessment_feedback
    query = sa.select(t.c.key_concept, t.c.label, t.c.thumbs, t.c.comment).where(
        t.c.assessment_id == fb.assessment_id, t.c.teacher == fb.teacher
    )
    return {row.key_concept: (row.label, row.thumbs, row.comment) for row in conn.execute(query)}


def save(
    engine: sa.Engine,
    fb: Feedback,
    record: AssessmentRecord | None,
    *,
    key_id: str,
    store_code: bool,
) -> SaveResult:
    """Validate and store ``fb`` in one transaction (nothing is written when anything is refused)."""
    if record is None:
        _check_shape(fb)
        raise FeedbackNotFoundError(f"no assessment with id {fb.assessment_id[:64]!r}", field="assessment_id")
    entries = validate(fb, record)
    try:
        return _save(engine, fb, record, entries, key_id=key_id, store_code=store_code)
    except sa.exc.IntegrityError:  # the same pair inserted concurrently: decide again against it
        return _save(engine, fb, record, entries, key_id=key_id, store_code=store_code)


def _save(
    engine: sa.Engine,
    fb: Feedback,
    record: AssessmentRecord,
    entries: Sequence[ConceptFeedback],
    *,
    key_id: str,
    store_code: bool,
) -> SaveResult:
    now = utcnow()
    created: list[str] = []
    unchanged: list[str] = []
    with engine.begin() as conn:
        existing = _existing(conn, fb)
        rows = []
        for entry in entries:
            values = (entry.label, entry.thumbs, fb.comment)
            if entry.key_concept in existing:
                if existing[entry.key_concept] != values:
                    raise FeedbackConflictError(
                        f"teacher {fb.teacher[:40]!r} already gave other feedback for {entry.key_concept!r} "
                        "on this assessment",
                        field="key_concepts",
                    )
                unchanged.append(entry.key_concept)
                continue
            created.append(entry.key_concept)
            rows.append(
                {
                    "assessment_id": record.id,
                    "key_concept": entry.key_concept,
                    "teacher": fb.teacher,
                    "label": entry.label,
                    "thumbs": entry.thumbs,
                    "comment": fb.comment,
                    "created_at": now,
                    "key_id": key_id[:128],
                }
            )
        if rows:
            conn.execute(assessment_feedback.insert(), rows)
        if fb.code is not None and store_code and record.code is None:
            conn.execute(
                assessment_records.update()
                .where(assessment_records.c.id == record.id, assessment_records.c.code.is_(None))
                .values(code=fb.code)
            )
    return SaveResult(tuple(created), tuple(unchanged))
