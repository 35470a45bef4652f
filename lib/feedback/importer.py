"""``aiproxy-admin feedback import FILE``: feedback exported from the web app's database, as CSV.

Columns (header row required, order free): ``assessment_id``, ``teacher``, ``key_concept`` and at
least one of ``label``, ``thumbs``; optional ``comment`` and ``code``.  Rows of the same assessment
and teacher form one submission, validated and stored exactly as ``POST /assessment/feedback``
(all-or-nothing per submission, idempotent, so importing a file twice changes nothing).  A refused
submission is reported with its lines and does not stop the others.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import sqlalchemy as sa

from lib.errors import InvalidRequestError
from lib.feedback.feedback import ConceptFeedback, Feedback, save
from lib.feedback.records import load_record

REQUIRED = ("assessment_id", "teacher", "key_concept")


@dataclass
class ImportResult:
    submissions: int = 0
    created: int = 0
    unchanged: int = 0
    refused: list[str] = field(default_factory=list)


@dataclass
class _Group:
    lines: list[int]
    concepts: list[ConceptFeedback]
    comment: str | None
    code: str | None


def _cell(row: dict[str, str | None], name: str) -> str | None:
    value = (row.get(name) or "").strip()
    return value or None


def read_groups(text: str) -> dict[tuple[str, str], _Group]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing or not ({"label", "thumbs"} & set(header)):
        need = ", ".join(missing) if missing else "label or thumbs"
        raise InvalidRequestError(f"the CSV header lacks {need} (header: {', '.join(header) or 'empty'})")
    reader.fieldnames = header
    groups: dict[tuple[str, str], _Group] = {}
    for row in reader:
        key = (_cell(row, "assessment_id") or "", _cell(row, "teacher") or "")
        group = groups.setdefault(key, _Group([], [], _cell(row, "comment"), row.get("code") or None))
        group.lines.append(reader.line_num)
        group.concepts.append(
            ConceptFeedback(_cell(row, "key_concept") or "", _cell(row, "label"), _cell(row, "thumbs"))
        )
    return groups


def import_csv(engine: sa.Engine, text: str, *, store_code: bool, key_id: str = "admin-cli") -> ImportResult:
    result = ImportResult()
    for (assessment_id, teacher), group in read_groups(text).items():
        result.submissions += 1
        fb = Feedback(assessment_id, teacher, tuple(group.concepts), group.comment, group.code)
        where = f"line{'s' if len(group.lines) > 1 else ''} {', '.join(map(str, group.lines))}"
        try:
            saved = save(engine, fb, load_record(engine, assessment_id), key_id=key_id, store_code=store_code)
        except InvalidRequestError as exc:
            result.refused.append(f"{where}: {exc.kind}: {exc.message}")
            continue
        result.created += len(saved.created)
        result.unchanged += len(saved.unchanged)
    return result
