"""``POST /assessment`` (AI rubric assessment, the Code.org web app's contract) and its smoke routes.

The work is ``lib.assessment.pipeline.run_assessment``; this module only reads the body (form-urlencoded
as the web app sends it, multipart, or JSON), turns the string fields into an ``AssessmentRequest``
(``lib.assessment.fields``) and returns ``{"metadata": ..., "data": [...]}``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import BaseModel, ConfigDict, Field

from lib.assessment import fixtures
from lib.assessment.fields import build_request
from lib.assessment.pipeline import run_assessment
from lib.errors import InvalidRequestError
from src.api import UPSTREAM_ERRORS, documented, parse_body, services
from src.auth import require_auth
from src.routes import feedback
from src.routes.collections import examples_by_similarity
from src.schemas import UsageOut

bp = Blueprint("assessment", __name__)
bp.register_blueprint(feedback.bp)  # POST /assessment/feedback, GET /assessment/feedback/summary

Scalar = str | int | float | bool | None


class AssessmentBody(BaseModel):
    """The web app's fields (all strings in a form post). Unknown fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    code: str = Field(description="Student program (JavaScript). Required; may be empty.")
    prompt: str = Field(description="System prompt for the grader. Required.")
    rubric: str = Field(description="Rubric CSV with a header row and a `Key Concept` column. Required.")
    examples: str | list[Any] | None = Field(
        None, description="JSON list of `[example_code, example_response]` pairs (TSV or JSON answers)."
    )
    model: str | None = Field(None, description="Routable model name; default from settings.")
    api_key: str | None = Field(None, alias="api-key", description="OpenAI key for this request only.")
    remove_comments: Scalar = Field(None, alias="remove-comments", description='"1" on, "0" off (default).')
    num_responses: Scalar = Field(None, alias="num-responses", description="Answers to vote on, 1-10 (1).")
    temperature: Scalar = Field(None, description="0-2 (default 0.2).")
    response_type: str | None = Field(None, alias="response-type", description="`tsv` (default) or `json`.")
    lesson: str | None = Field(None, description="Lesson id, e.g. `csd3-2023-L11` (for the extractor).")
    code_feature_extractor: str | list[str] | None = Field(
        None, alias="code-feature-extractor", description="Key concepts for the code feature extractor."
    )
    max_tokens: Scalar = Field(None, alias="max-tokens", description="Answer budget per response.")
    examples_collection: str | None = Field(
        None,
        alias="examples-collection",
        description="Collection of graded examples: the nearest replace `examples`.",
    )
    examples_count: Scalar = Field(
        None, alias="examples-count", description="With examples-collection: 1-10 (3)."
    )


class AssessmentRow(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    key_concept: str = Field(alias="Key Concept")
    observations: str = Field(alias="Observations")
    evidence: str = Field(alias="Evidence")
    label: str = Field(
        alias="Label", description="Extensive Evidence | Convincing Evidence | Limited Evidence | No Evidence"
    )
    reason: str = Field(alias="Reason")


class AssessmentMetadata(BaseModel):
    agent: str = Field(
        description="static | openai | anthropic | meta | local [+ ', code feature extractor']"
    )
    time: float = Field(description="Seconds spent.")
    model: str
    usage: UsageOut
    flags: list[str] = Field(description='e.g. ["possible_prompt_injection"]')
    assessment_id: str = Field(description="Id of this answer's record, for POST /assessment/feedback.")


class AssessmentOut(BaseModel):
    metadata: AssessmentMetadata
    data: list[AssessmentRow]


class FixtureOverrides(BaseModel):
    """Optional overrides of a bundled fixture's fields (query string, or form fields on POST)."""

    model_config = ConfigDict(populate_by_name=True)
    model: str | None = Field(None, description="Routable model name instead of the default.")
    num_responses: str | None = Field(None, alias="num-responses", description="Answers to vote on, 1-10.")
    temperature: str | None = Field(None, description="0-2.")
    api_key: str | None = Field(None, alias="api-key", description="OpenAI key for this request only.")


def _respond(fields: dict[str, Any]) -> Response:
    svc = services()
    fields = examples_by_similarity(fields)
    req = build_request(fields, default_model=svc.gateway.default_model("assessment"))
    g.model = req.model
    result = run_assessment(svc.gateway, req, deadline=g.deadline)
    # queued, written in the background: the answer never waits for the database
    assessment_id = feedback.recorder().record(req, result, key_id=feedback.caller_key_id())
    return jsonify({"metadata": {**result.metadata, "assessment_id": assessment_id}, "data": result.data})


@bp.post("/assessment")
@require_auth
@documented(
    "AI rubric assessment of a student program (the Code.org web app's contract)",
    body=AssessmentBody,
    responses={200: AssessmentOut},
    errors=UPSTREAM_ERRORS,
    form=True,
    tags=("assessment",),
    description=(
        "Form-urlencoded (as the web app sends it), multipart or JSON. 413: input too long for the "
        "model or answer cut off by the token limit. 502 `invalid_model_answer`: no usable answer "
        "after one repair attempt. See API.md."
    ),
)
def assessment() -> Response:
    body = parse_body(AssessmentBody, allow_form=True)
    return _respond(body.model_dump(by_alias=True, exclude_none=True))


def _fixture_route(name: str) -> Response:
    fields = fixtures.fixture_fields(name)
    if request.method == "POST":
        # Read the whole body first, whatever its type, so MAX_BODY_BYTES and the chunked framing are
        # checked before the model is called (a JSON body is not read by request.form).
        request.get_data(cache=True)
    overrides = request.values if request.method == "GET" else request.form or request.args
    for key in ("model", "num-responses", "temperature"):
        value = overrides.get(key)
        if value:
            fields[key] = value
    api_key = request.headers.get("api-key") or overrides.get("api-key")
    if api_key:
        fields["api-key"] = api_key
    if name not in fixtures.NAMES:  # pragma: no cover - the routes below pass known names
        raise InvalidRequestError(f"unknown fixture {name!r}")
    return _respond(fields)


_FIXTURE_DOC = (
    "Runs a bundled Code.org lesson fixture through the pipeline (spends money: authenticated). "
    "Optional query/form overrides: `model`, `num-responses`, `temperature`, `api-key`."
)


@bp.route("/test/assessment", methods=["GET", "POST"])
@require_auth
@documented(
    "Smoke test: the u3l13 fixture (csd3 'Animation')",
    responses={200: AssessmentOut},
    errors=UPSTREAM_ERRORS,
    tags=("assessment",),
    description=_FIXTURE_DOC,
    query=FixtureOverrides,
)
def test_assessment() -> Response:
    return _fixture_route("assessment")


@bp.route("/test/assessment/blank", methods=["GET", "POST"])
@require_auth
@documented(
    "Smoke test: blank code (static answer, no model call)",
    responses={200: AssessmentOut},
    errors=UPSTREAM_ERRORS,
    tags=("assessment",),
    description=_FIXTURE_DOC,
    query=FixtureOverrides,
)
def test_assessment_blank() -> Response:
    return _fixture_route("blank")


@bp.route("/test/assessment/examples", methods=["GET", "POST"])
@require_auth
@documented(
    "Smoke test: the u3l13 fixture with one few-shot example",
    responses={200: AssessmentOut},
    errors=UPSTREAM_ERRORS,
    tags=("assessment",),
    description=_FIXTURE_DOC,
    query=FixtureOverrides,
)
def test_assessment_examples() -> Response:
    return _fixture_route("examples")


@bp.route("/test/assessment/cfe", methods=["GET", "POST"])
@require_auth
@documented(
    "Smoke test: csd3-2023-L11 with the code feature extractor",
    responses={200: AssessmentOut},
    errors=UPSTREAM_ERRORS,
    tags=("assessment",),
    description=_FIXTURE_DOC,
    query=FixtureOverrides,
)
def test_assessment_cfe() -> Response:
    return _fixture_route("cfe")
