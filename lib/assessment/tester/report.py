"""The run's outputs: one self-contained ``report.html``, ``summary.json`` and ``predictions.csv``.

The HTML has no external resources (inline CSS, a few lines of inline JS, inline SVG charts) and is
rendered by Jinja2 with autoescaping, so every value -- student code included -- is HTML-escaped.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from lib.assessment.tester.data import LessonData
from lib.assessment.tester.evidence import cited_lines
from lib.assessment.tester.runner import Outcome
from lib.assessment.tester.stats import LEVEL, PASSING, Prediction
from lib.assessment.types import LABELS
from lib.fileio import atomic_write_json, atomic_write_text

TEMPLATE = "report.html.j2"
NEW_LABELS_FILE = "new_labels.csv"
SHORT = {
    "Extensive Evidence": "Extensive",
    "Convincing Evidence": "Convincing",
    "Limited Evidence": "Limited",
    "No Evidence": "No",
}


def natural_key(text: str) -> list[tuple[int, int | str]]:
    """Sort key putting ``s2`` before ``s10`` (digit runs compare as numbers)."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text) if part]


def write_new_labels(folder: Path, lesson: LessonData, outcomes: Sequence[Outcome]) -> tuple[Path, int, int]:
    """``--new-labels``: the AI's labels as ``new_labels.csv`` in ``actual_labels.csv``'s format.

    Returns (path, students written, failed students left out)."""
    by_key = {(o.lesson, o.student_id): o for o in outcomes}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["student", *lesson.key_concepts])
    written = left_out = 0
    for student in sorted(lesson.students, key=lambda s: natural_key(s.id)):
        o = by_key.get((lesson.lesson, student.id))
        if o is None:
            continue
        rows = answer_rows(o)
        if not rows:
            left_out += 1
            continue
        writer.writerow([student.id, *(str(rows[kc].get("Label", "")) for kc in lesson.key_concepts)])
        written += 1
    path = folder / NEW_LABELS_FILE
    atomic_write_text(path, buf.getvalue())
    return path, written, left_out


def agreement(human: str, ai: str | None) -> str:
    if ai is None:
        return "error"
    d = abs(LEVEL[human] - LEVEL[ai])
    return "exact" if d == 0 else "off1" if d == 1 else "off2"


def answer_rows(outcome: Outcome) -> dict[str, dict[str, Any]]:
    if outcome.result is None:
        return {}
    return {str(r.get("Key Concept", "")).strip(): r for r in outcome.result.data}


def predictions_from(lessons: Sequence[LessonData], outcomes: Sequence[Outcome]) -> list[Prediction]:
    by_key = {(o.lesson, o.student_id): o for o in outcomes}
    out: list[Prediction] = []
    for lesson in lessons:
        for student in lesson.students:
            o = by_key.get((lesson.lesson, student.id))
            if o is None:
                continue
            rows = answer_rows(o)
            for kc in lesson.key_concepts:
                ai = str(rows[kc].get("Label")) if kc in rows else None
                out.append(Prediction(lesson.lesson, student.id, kc, lesson.labels[student.id][kc], ai))
    return out


CSV_COLUMNS = (
    "lesson",
    "student",
    "key_concept",
    "human_label",
    "ai_label",
    "agreement",
    "human_pass",
    "ai_pass",
    "observations",
    "evidence",
    "reason",
    "model",
    "agent",
    "cached",
    "latency_s",
    "error_kind",
    "error_message",
)


def predictions_csv(lessons: Sequence[LessonData], outcomes: Sequence[Outcome]) -> str:
    by_key = {(o.lesson, o.student_id): o for o in outcomes}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for lesson in lessons:
        for student in lesson.students:
            o = by_key.get((lesson.lesson, student.id))
            if o is None:
                continue
            rows = answer_rows(o)
            meta = o.result.metadata if o.result else {}
            for kc in lesson.key_concepts:
                human = lesson.labels[student.id][kc]
                row = rows.get(kc, {})
                ai = str(row["Label"]) if row else None
                writer.writerow(
                    [
                        lesson.lesson,
                        student.id,
                        kc,
                        human,
                        ai or "",
                        {"exact": "exact", "off1": "off_by_one", "off2": "off_by_more", "error": "error"}[
                            agreement(human, ai)
                        ],
                        int(human in PASSING),
                        "" if ai is None else int(ai in PASSING),
                        row.get("Observations", ""),
                        row.get("Evidence", ""),
                        row.get("Reason", ""),
                        meta.get("model", ""),
                        meta.get("agent", ""),
                        int(o.cached),
                        f"{o.latency_s:.3f}",
                        o.error_kind or "",
                        o.error_message or "",
                    ]
                )
    return buf.getvalue()


@dataclass
class RowView:
    key_concept: str
    human: str
    ai: str | None
    cls: str
    observations: str
    evidence: str
    reason: str


@dataclass
class LineView:
    number: int
    text: str
    cited_by: list[str] = field(default_factory=list)


@dataclass
class StudentView:
    lesson: str
    id: str
    rows: list[RowView]
    lines: list[LineView]
    disagree: bool
    error: str | None
    cached: bool
    latency_s: float
    flags: list[str]
    agent: str


def student_views(lessons: Sequence[LessonData], outcomes: Sequence[Outcome]) -> list[StudentView]:
    by_key = {(o.lesson, o.student_id): o for o in outcomes}
    views: list[StudentView] = []
    for lesson in lessons:
        for student in sorted(lesson.students, key=lambda s: natural_key(s.id)):
            o = by_key.get((lesson.lesson, student.id))
            if o is None:
                continue
            answer = answer_rows(o)
            code_lines = student.code.split("\n")
            if code_lines and code_lines[-1] == "":
                code_lines.pop()
            lines = [LineView(i + 1, text) for i, text in enumerate(code_lines)]
            rows: list[RowView] = []
            for kc in lesson.key_concepts:
                human = lesson.labels[student.id][kc]
                r = answer.get(kc, {})
                ai = str(r["Label"]) if r else None
                evidence = str(r.get("Evidence", "") or "")
                for n in sorted(cited_lines(evidence, len(lines))):
                    lines[n - 1].cited_by.append(kc)
                rows.append(
                    RowView(
                        kc,
                        human,
                        ai,
                        agreement(human, ai),
                        str(r.get("Observations", "") or ""),
                        evidence,
                        str(r.get("Reason", "") or ""),
                    )
                )
            meta = o.result.metadata if o.result else {}
            views.append(
                StudentView(
                    lesson=lesson.lesson,
                    id=student.id,
                    rows=rows,
                    lines=lines,
                    disagree=any(r.cls != "exact" for r in rows),
                    error=f"{o.error_kind}: {o.error_message}" if o.error_kind else None,
                    cached=o.cached,
                    latency_s=o.latency_s,
                    flags=[str(f) for f in (meta.get("flags") or [])],
                    agent=str(meta.get("agent", "")),
                )
            )
    return views


def latency_summary(outcomes: Sequence[Outcome]) -> dict[str, float | None]:
    values = sorted(o.latency_s for o in outcomes if o.ok and o.latency_s > 0)
    if not values:
        return {"mean": None, "p50": None, "p95": None, "max": None}

    def pct(q: float) -> float:
        return values[min(len(values) - 1, round(q * (len(values) - 1)))]

    return {"mean": statistics.fmean(values), "p50": pct(0.5), "p95": pct(0.95), "max": values[-1]}


def _pct(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def _ci(ratio: dict[str, Any]) -> str:
    ci = ratio.get("ci95")
    return "" if not ci else f"[{ci[0] * 100:.1f}–{ci[1] * 100:.1f}]"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _heat(count: int, total: int, diagonal: bool) -> str:
    """An inline CSS background for a heatmap cell (numbers only: nothing to escape)."""
    alpha = 0.0 if total == 0 else min(1.0, 0.08 + 0.92 * count / total) if count else 0.0
    rgb = "34,139,34" if diagonal else "200,50,50"
    return f"background-color: rgba({rgb},{alpha:.3f})"


def chart_rows(stats: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for lesson, ls in stats["lessons"].items():
        for kc, m in ls["key_concepts"].items():
            rows.append({"lesson": lesson, "kc": kc, "exact": m["exact"], "pass_fail": m["pass_fail"]})
    return rows


def rubric_table(rubric: str) -> list[list[str]]:
    """The rubric CSV as rows of cells (header first) for the report; unparseable text is one cell."""
    try:
        rows = [row for row in csv.reader(io.StringIO(rubric.lstrip("\ufeff"))) if row]
    except csv.Error:
        return [[rubric]]
    return rows or [[rubric]]


def render_html(context: dict[str, Any], template: str = TEMPLATE) -> str:
    """Render ``template`` (this report, or the feedback accuracy report that shares its style and
    accuracy section: ``_report_style.html.j2``, ``_accuracy.html.j2``)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pct"] = _pct
    env.filters["ci"] = _ci
    env.filters["num"] = _num
    env.globals["heat"] = _heat
    env.globals["LABELS"] = LABELS
    env.globals["SHORT"] = SHORT
    return env.get_template(template).render(**context)


def error_list(outcomes: Sequence[Outcome]) -> list[dict[str, Any]]:
    """The failed assessments, by lesson and student."""
    return [
        {"lesson": o.lesson, "student": o.student_id, "kind": o.error_kind, "message": o.error_message}
        for o in sorted(outcomes, key=lambda o: (o.lesson, natural_key(o.student_id)))
        if not o.ok
    ]


def write_outputs(
    out_dir: Path,
    *,
    run: dict[str, Any],
    totals: dict[str, Any],
    stats: dict[str, Any],
    lessons: Sequence[LessonData],
    outcomes: Sequence[Outcome],
    dynamic: dict[str, Any] | None = None,
    dynamic_outcomes: Sequence[Outcome] = (),
) -> dict[str, Path]:
    """``dynamic``: ``--dynamic-examples``' comparison (summary ``dynamic_examples``, a report section
    and ``predictions_dynamic.csv`` from ``dynamic_outcomes``)."""
    errors = error_list(outcomes)
    summary: dict[str, Any] = {"run": run, "totals": totals, "statistics": stats, "errors": errors}
    paths = {
        "report": out_dir / "report.html",
        "summary": out_dir / "summary.json",
        "predictions": out_dir / "predictions.csv",
    }
    if dynamic is not None:
        summary["dynamic_examples"] = dynamic
        paths["dynamic_predictions"] = out_dir / "predictions_dynamic.csv"
        atomic_write_text(paths["dynamic_predictions"], predictions_csv(lessons, dynamic_outcomes))
    atomic_write_json(paths["summary"], summary)
    atomic_write_text(paths["predictions"], predictions_csv(lessons, outcomes))
    html = render_html(
        {
            "run": run,
            "totals": totals,
            "stats": stats,
            "errors": errors,
            "dynamic": dynamic,
            "students": student_views(lessons, outcomes),
            "chart": chart_rows(stats),
            "lessons": lessons,
            "inputs": [
                {"lesson": lesson.lesson, "prompt": lesson.prompt, "rubric": rubric_table(lesson.rubric)}
                for lesson in lessons
            ],
        }
    )
    atomic_write_text(paths["report"], html)
    return paths
