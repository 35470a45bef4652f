"""Production accuracy: the AI's labels against teachers' labels, with the rubric tester's statistics.

One (teacher, AI) pair per (assessment, key concept): the teacher label is the most recent feedback
on that pair that has one -- the teacher's own ``label``, or the AI's label when the teacher gave only
a thumbs up.  A thumbs down without a label says the AI was wrong but not what is right, so it makes
no pair; it is counted (``thumbs_down_without_label``).  When several teachers judged the same key
concept, the most recent one counts (the same rule the dataset builder uses, so a dataset built from
the same window reproduces these numbers).

The numbers are ``lib.assessment.tester.stats`` (one implementation: exact and pass/fail agreement
with 95 % Wilson intervals, kappa, quadratic-weighted kappa, confusion...), per lesson and key
concept, plus a weekly trend (ISO weeks of the assessment time); the HTML report is the rubric
tester's report style (``lib/assessment/tester/feedback_report.html.j2``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from lib.assessment.tester.report import chart_rows, render_html
from lib.assessment.tester.stats import Prediction, compute_all, group_of, metrics
from lib.feedback.records import AssessmentRecord, count_records, in_window, query_records, utcnow
from lib.store.assessment_schema import assessment_feedback, assessment_records

TEMPLATE = "feedback_report.html.j2"


@dataclass(frozen=True)
class Verdicts:
    """Records in the window and, per record id, the teacher label of each judged key concept."""

    records: list[AssessmentRecord]
    labels: dict[str, dict[str, str]]
    thumbs_down_without_label: int


def teacher_verdicts(
    engine: sa.Engine,
    *,
    lesson: str | None = None,
    since: datetime | None = None,
    with_code: bool = False,
    light: bool = False,
) -> Verdicts:
    """The judged records of the window (``light``: without their texts) and their teacher labels."""
    records = query_records(engine, lesson=lesson, since=since, with_code=with_code, light=light)
    by_id = {r.id: r for r in records}
    f, r = assessment_feedback, assessment_records
    query = (
        sa.select(f.c.assessment_id, f.c.key_concept, f.c.label, f.c.thumbs)
        .join(r, r.c.id == f.c.assessment_id)
        .order_by(f.c.created_at, f.c.id)
    )
    query = in_window(query, lesson=lesson, since=since)
    labels: dict[str, dict[str, str]] = {}
    thumbs_down: set[tuple[str, str]] = set()
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    for assessment_id, kc, label, thumbs in rows:
        record = by_id.get(assessment_id)
        if record is None:  # created after the records were read, or without code when with_code
            continue
        human = label or (record.ai_labels.get(kc) if thumbs == "up" else None)
        if human is None:
            thumbs_down.add((assessment_id, kc))
            continue
        labels.setdefault(assessment_id, {})[kc] = human
    unlabelled = sum(1 for a, kc in thumbs_down if kc not in labels.get(a, {}))
    return Verdicts(records, labels, unlabelled)


def key_concepts_by_lesson(records: Iterable[AssessmentRecord]) -> dict[str, list[str]]:
    """Each lesson's key concepts in rubric order (a rubric revision's new ones appended)."""
    out: dict[str, list[str]] = {}
    for record in records:
        kcs = out.setdefault(record.lesson, [])
        kcs.extend(kc for kc in record.key_concepts if kc not in kcs)
    return out


def predictions(verdicts: Verdicts) -> list[Prediction]:
    out = []
    for record in verdicts.records:
        for kc, human in verdicts.labels.get(record.id, {}).items():
            out.append(Prediction(record.lesson, record.id, kc, human, record.ai_labels.get(kc)))
    return out


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


def weekly(verdicts: Verdicts) -> dict[str, list[dict[str, Any]]]:
    """Per lesson, per ISO week of the assessments: n, exact, pass/fail, kappa, QW kappa."""
    created = {r.id: r.created_at for r in verdicts.records}
    buckets: dict[str, dict[str, list[Prediction]]] = {}
    for p in predictions(verdicts):
        buckets.setdefault(p.lesson, {}).setdefault(_week(created[p.student_id]), []).append(p)
    out: dict[str, list[dict[str, Any]]] = {}
    for lesson, weeks in buckets.items():
        out[lesson] = []
        for week in sorted(weeks):
            m = metrics(group_of(weeks[week]))
            keep = ("n", "exact", "pass_fail", "kappa", "weighted_kappa")
            out[lesson].append({"week": week, **{k: m[k] for k in keep}})
    return out


def summary(engine: sa.Engine, *, lesson: str | None = None, since: datetime | None = None) -> dict[str, Any]:
    """``GET /assessment/feedback/summary`` and ``aiproxy-admin feedback report``."""
    verdicts = teacher_verdicts(engine, lesson=lesson, since=since, light=True)
    preds = predictions(verdicts)
    judged = {p.student_id for p in preds}
    lessons: dict[str, Sequence[str]] = dict(
        key_concepts_by_lesson(r for r in verdicts.records if r.id in judged)
    )
    return {
        "filters": {"lesson": lesson, "since": since.isoformat() if since else None},
        "generated_at": utcnow().isoformat(timespec="seconds") + "Z",
        "assessments": count_records(engine, lesson=lesson, since=since),
        "assessments_with_feedback": len(judged),
        "pairs": len(preds),
        "thumbs_down_without_label": verdicts.thumbs_down_without_label,
        "statistics": compute_all(preds, lessons),
        "weekly": weekly(verdicts),
    }


def render_report(result: dict[str, Any]) -> str:
    """The self-contained HTML report of a ``summary`` (the rubric tester report's style)."""
    stats = result["statistics"]
    return render_html({"summary": result, "stats": stats, "chart": chart_rows(stats)}, TEMPLATE)
