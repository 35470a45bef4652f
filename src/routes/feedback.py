"""``POST /assessment/feedback``, ``GET /assessment/feedback/summary`` and ``/report``: teachers'
verdicts on assessments and the production accuracy they measure (JSON, or the HTML report page).

Nested in the assessment blueprint (same ``assessment`` scope).  The work is in ``lib.feedback``;
this module reads the body (JSON, form-urlencoded or multipart, ``key_concepts`` as JSON text in a
form), maps the outcome to 200/400/404/409 and builds the app's ``AssessmentRecorder`` (one per app,
sharing the store the keys and ledger use; closed by gunicorn's ``worker_exit``) and, with
``RECORD_RETENTION_DAYS``, the retention job.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Flask, Response, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, ConfigDict, Field

from lib.errors import InvalidRequestError
from lib.feedback.accuracy import render_report, summary
from lib.feedback.feedback import ConceptFeedback, Feedback, FeedbackConflictError, save
from lib.feedback.records import AssessmentRecorder, parse_since
from lib.feedback.retention import RetentionJob
from src.accounts import ACCOUNTS_EXTENSION, current_call
from src.api import documented, parse_body, services
from src.auth import require_auth
from src.errors import error_response

bp = Blueprint("feedback", __name__)

#: ``app.extensions`` key of the app's ``AssessmentRecorder``.
RECORDS_EXTENSION = "aiproxy.assessment_records"


@bp.record_once
def _install(state: BlueprintSetupState) -> None:
    app = state.app
    settings = app.extensions["aiproxy"].settings
    store = app.extensions[ACCOUNTS_EXTENSION].store
    app.extensions[RECORDS_EXTENSION] = AssessmentRecorder(
        store.engine,
        store_code=settings.store_student_code,
        flush_seconds=settings.ledger_flush_seconds,
        queue_max=settings.ledger_queue_max,
    )
    if settings.record_retention_days is not None:
        app.extensions[RECORDS_EXTENSION + ".retention"] = RetentionJob(
            store.engine, settings.record_retention_days, settings.record_retention_interval_seconds
        ).start()


def recorder(app: Flask | None = None) -> AssessmentRecorder:
    found: AssessmentRecorder = (app or current_app).extensions[RECORDS_EXTENSION]
    return found


def caller_key_id() -> str:
    current = current_call.get()
    return current[0].key_id if current is not None else ""


class ConceptFeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key_concept: str = Field(description="A key concept of the assessment's rubric.")
    label: str | None = Field(
        None, description="The teacher's label: Extensive | Convincing | Limited | No Evidence."
    )
    thumbs: Literal["up", "down"] | None = Field(None, description="The teacher's verdict on the AI's label.")


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assessment_id: str = Field(
        description="`metadata.assessment_id` of the /assessment answer.", max_length=64
    )
    teacher: str = Field(description="Opaque teacher reference (no names).", max_length=200)
    key_concepts: list[ConceptFeedbackIn] = Field(
        description="One entry per key concept judged (JSON text in a form)."
    )
    comment: str | None = Field(None, description="Optional free text (at most 4000 characters).")
    code: str | None = Field(
        None, description="The assessed program; kept only with STORE_STUDENT_CODE=1 and if it matches."
    )


class FeedbackOut(BaseModel):
    assessment_id: str
    created: list[str] = Field(description="Key concepts stored by this call.")
    unchanged: list[str] = Field(description="Key concepts already stored with the same values.")


@bp.post("/assessment/feedback")
@require_auth
@documented(
    "A teacher's labels / thumbs on an assessment's key concepts (idempotent)",
    body=FeedbackIn,
    responses={200: FeedbackOut},
    errors=(400, 401, 404, 409),
    form=True,
    tags=("assessment",),
    description="400 names the field; 404 unknown assessment_id; 409 other feedback already stored for "
    "the same (assessment, key concept, teacher). Nothing is stored when the answer is not 200. See API.md.",
)
def feedback() -> Response:
    body = parse_body(FeedbackIn, allow_form=True)
    fb = Feedback(
        assessment_id=body.assessment_id,
        teacher=body.teacher,
        concepts=tuple(ConceptFeedback(c.key_concept, c.label, c.thumbs) for c in body.key_concepts),
        comment=body.comment,
        code=body.code,
    )
    records = recorder()
    record = records.find(body.assessment_id)
    try:
        result = save(
            records.engine,
            fb,
            record,
            key_id=caller_key_id(),
            store_code=services().settings.store_student_code,
        )
    except FeedbackConflictError as exc:
        return error_response(409, exc.message, exc.kind, field=exc.field)
    return jsonify(result.as_dict(body.assessment_id))


class SummaryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lesson: str | None = Field(None, description="Only this lesson (as sent in /assessment's `lesson`).")
    since: str | None = Field(
        None, description="Only assessments from this UTC date or ISO 8601 time (inclusive)."
    )


class SummaryOut(BaseModel):
    filters: dict[str, Any]
    generated_at: str
    assessments: int = Field(description="Records in the window.")
    assessments_with_feedback: int
    pairs: int = Field(description="(assessment, key concept) pairs with a teacher label.")
    thumbs_down_without_label: int
    statistics: dict[str, Any] = Field(
        description="The rubric tester's statistics: overall, per lesson and key concept."
    )
    weekly: dict[str, list[dict[str, Any]]] = Field(description="Per lesson, per ISO week.")


def _summary() -> dict[str, Any]:
    unknown = sorted(set(request.args) - set(SummaryQuery.model_fields))
    if unknown:
        raise InvalidRequestError(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    q = SummaryQuery.model_validate(request.args.to_dict())
    records = recorder()
    if records.writer.pending:  # this worker's queued records count too
        records.writer.flush()
    try:
        since = parse_since(q.since) if q.since else None
    except ValueError as exc:
        raise InvalidRequestError(f"since: {exc}", field="since") from None
    return summary(records.engine, lesson=q.lesson, since=since)


@bp.get("/assessment/feedback/summary")
@require_auth
@documented(
    "Production accuracy: AI labels against teachers' labels per lesson and key concept, weekly trend",
    query=SummaryQuery,
    responses={200: SummaryOut},
    errors=(400, 401),
    tags=("assessment",),
)
def feedback_summary() -> Response:
    return jsonify(_summary())


@bp.get("/assessment/feedback/report")
@require_auth
@documented(
    "The same numbers as a self-contained HTML page (the rubric tester report's style)",
    query=SummaryQuery,
    responses={200: "text/html: the report page"},
    errors=(400, 401),
    tags=("assessment",),
)
def feedback_report() -> Response:
    return Response(render_report(_summary()), mimetype="text/html")
