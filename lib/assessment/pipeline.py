"""The assessment pipeline: ``run_assessment(gateway, request, deadline=None) -> AssessmentResult``.

Steps (each in its own module): validate and parse the rubric and examples (``rubric``, ``examples``);
flag prompt injection on the code as sent (``injection``); optionally remove comments (``comments``);
blank code -> a static answer with no model call; code feature extractor rows for the requested key
concepts (``cfe``); prompt with spotlighted code and a JSON schema (``prompt``); ``num_responses``
answers in one gateway call (OpenAI ``n``; the other providers make parallel calls); parse and validate
each (``parse``); one repair call for invalid answers; majority vote (``vote``); CFE rows replace the
model's; metadata with agent, time, model, usage summed over every call, flags.

Errors (all ``lib.errors``): ``InvalidRequestError(field=...)`` for the caller's mistakes (``field`` is
the web app's form-field name), ``UnknownModelError`` from routing, ``ContextTooLongError`` (input too
long, from the provider) and ``OutputTruncatedError`` (an answer cut off by the token limit that cannot
be used) - both 413 -, ``InvalidModelAnswerError`` when no answer is valid after the repair attempt, and
whatever the gateway raises for upstream trouble (rate limit, unavailable, timeout, authentication).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass

from lib.assessment.comments import remove_comments
from lib.assessment.examples import validate_examples
from lib.assessment.injection import injection_flags
from lib.assessment.parse import AnswerProblem, parse_answer
from lib.assessment.prompt import answer_schema, build_messages, repair_messages
from lib.assessment.rubric import Rubric, parse_rubric
from lib.assessment.types import AssessmentRequest, AssessmentResult
from lib.assessment.vote import majority_vote
from lib.errors import InvalidModelAnswerError, InvalidRequestError, OutputTruncatedError
from lib.providers.base import ChatResult, Message, Usage
from lib.providers.deadline import Deadline
from lib.providers.gateway import Gateway
from lib.providers.routing import Route

log = logging.getLogger(__name__)

#: bump when the prompt template, schema or parsing changes what an answer would be (cache keys)
PIPELINE_VERSION = "2025-1"
MAX_NUM_RESPONSES = 10
EMPTY_PROGRAM = "The program is empty."


#: the embedded local model writes at most this many characters per text field (grammar-enforced)
LOCAL_MAX_TEXT = 160


def default_max_tokens(num_key_concepts: int, provider: str = "") -> int:
    """Answer budget per choice: 1024 + 768 per key concept, at most 8192; for the local model, whose
    text fields are bounded by the grammar, 128 + 256 per key concept (always enough to finish)."""
    if provider == "local":
        return 128 + 256 * num_key_concepts
    return min(8192, 1024 + 768 * num_key_concepts)


@dataclass(frozen=True)
class Prepared:
    request: AssessmentRequest
    rubric: Rubric
    route: Route
    examples: list[tuple[str, list[dict[str, str]]]]
    cfe_key_concepts: list[str]
    code: str  # after optional comment removal
    flags: list[str]


def validate_request(gateway: Gateway, request: AssessmentRequest) -> Prepared:
    """Every check that needs no model call; raises ``InvalidRequestError`` naming the field."""
    if not isinstance(request.code, str):
        raise InvalidRequestError("code is required (it may be empty)", field="code")
    if not isinstance(request.prompt, str) or not request.prompt.strip():
        raise InvalidRequestError("prompt is required", field="prompt")
    if isinstance(request.num_responses, bool) or not isinstance(request.num_responses, int):
        raise InvalidRequestError("num-responses must be an integer", field="num-responses")
    if not 1 <= request.num_responses <= MAX_NUM_RESPONSES:
        raise InvalidRequestError(f"num-responses must be 1..{MAX_NUM_RESPONSES}", field="num-responses")
    temp = request.temperature
    if isinstance(temp, bool) or not isinstance(temp, int | float) or not math.isfinite(temp):
        raise InvalidRequestError("temperature must be a number", field="temperature")
    if not 0.0 <= float(temp) <= 2.0:
        raise InvalidRequestError("temperature must be between 0 and 2", field="temperature")
    if request.response_type not in ("tsv", "json"):
        raise InvalidRequestError("response-type must be 'tsv' or 'json'", field="response-type")
    if request.max_tokens is not None and not 1 <= request.max_tokens <= 200_000:
        raise InvalidRequestError("max-tokens must be 1..200000", field="max-tokens")
    rubric = parse_rubric(request.rubric)
    examples = validate_examples(request.examples, rubric)
    route = gateway.resolve(request.model)
    cfe_kcs: list[str] = []
    if request.code_feature_extractor:  # esprima and the lesson trees: loaded on first use
        from lib.assessment import cfe
    for name in request.code_feature_extractor:
        kc = rubric.lookup(name)
        if kc is None:
            raise InvalidRequestError(
                f"code-feature-extractor names {name[:80]!r}, which is not a rubric key concept",
                field="code-feature-extractor",
            )
        if not request.lesson:
            raise InvalidRequestError("code-feature-extractor needs a lesson", field="lesson")
        if cfe.find_tree(request.lesson, kc) is None:
            raise InvalidRequestError(
                f"no code feature extractor for {kc!r} in lesson {request.lesson[:40]!r} "
                f"(lessons: {', '.join(cfe.lessons())})",
                field="code-feature-extractor",
            )
        if kc not in cfe_kcs:
            cfe_kcs.append(kc)
    flags = injection_flags(request.code)
    code = remove_comments(request.code) if request.remove_comments else request.code
    return Prepared(request, rubric, route, examples, cfe_kcs, code, flags)


def request_fingerprint(request: AssessmentRequest) -> str:
    """A stable hash of everything that shapes an answer (never the API key). Hex SHA-256."""
    shape = {
        "v": PIPELINE_VERSION,
        "model": request.model,
        "temperature": request.temperature,
        "num_responses": request.num_responses,
        "max_tokens": request.max_tokens,
        "remove_comments": bool(request.remove_comments),
        "response_type": request.response_type,
        "lesson": request.lesson or "",
        "code_feature_extractor": list(request.code_feature_extractor),
        "prompt": request.prompt,
        "rubric": request.rubric,
        "examples": [list(pair) for pair in request.examples],
        "code": request.code,
    }
    blob = json.dumps(shape, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _metadata(
    agent: str, started: float, request: AssessmentRequest, usage: Usage, flags: list[str], **extra: object
) -> dict[str, object]:
    meta: dict[str, object] = {
        "agent": agent,
        "time": round(time.monotonic() - started, 3),
        "model": request.model,
        "usage": usage.as_dict(),
        "flags": list(flags),
    }
    meta.update({k: v for k, v in extra.items() if v not in (None, [], {})})
    return meta


def static_result(prep: Prepared, started: float) -> AssessmentResult:
    rows = [
        {
            "Key Concept": kc,
            "Observations": EMPTY_PROGRAM,
            "Evidence": "",
            "Label": "No Evidence",
            "Reason": EMPTY_PROGRAM,
        }
        for kc in prep.rubric.key_concepts
    ]
    return AssessmentResult(rows, _metadata("static", started, prep.request, Usage(), prep.flags))


@dataclass
class _Answers:
    valid: list[list[dict[str, str]]]
    invalid: list[tuple[str, str]]  # (answer text, problem)


def _collect(result: ChatResult, rubric: Rubric, route: Route, max_tokens: int) -> _Answers:
    answers = _Answers([], [])
    for choice in result.choices:
        try:
            answers.valid.append(parse_answer(choice.text, rubric).rows)
        except AnswerProblem as exc:
            if choice.finish_reason == "length":
                raise OutputTruncatedError(
                    f"the model's answer was cut off by the token limit ({max_tokens} tokens) "
                    "and is unusable",
                    provider=route.provider,
                    model=route.name,
                ) from None
            answers.invalid.append((choice.text, str(exc)))
    if not result.choices:
        answers.invalid.append(("", "the model returned no answer"))
    return answers


def ask_model(
    gateway: Gateway, prep: Prepared, deadline: Deadline
) -> tuple[list[list[dict[str, str]]], Usage, dict[str, int]]:
    """Valid answers (after at most one repair call), usage over all calls, answer counts."""
    req = prep.request
    rubric = prep.rubric
    messages: list[Message] = build_messages(req.prompt, rubric, prep.code, prep.examples)
    local = prep.route.provider == "local"
    schema = answer_schema(rubric, max_text=LOCAL_MAX_TEXT if local else None)
    max_tokens = req.max_tokens or default_max_tokens(len(rubric.key_concepts), prep.route.provider)

    def call(msgs: list[Message], n: int) -> ChatResult:
        return gateway.chat(
            req.model,
            msgs,
            temperature=req.temperature,
            max_tokens=max_tokens,
            n=n,
            json_schema=schema,
            api_key=req.api_key,
            deadline=deadline,
        )

    first = call(messages, req.num_responses)
    usage = first.usage
    answers = _collect(first, rubric, prep.route, max_tokens)
    counts = {"valid": len(answers.valid), "repaired": 0, "discarded": 0}
    if answers.invalid:
        bad_text, problem = answers.invalid[0]
        log.info(
            "assessment answer invalid (%d of %d); one repair call", len(answers.invalid), req.num_responses
        )
        second = call(repair_messages(messages, bad_text, problem, rubric), len(answers.invalid))
        usage = usage + second.usage
        repaired = _collect(second, rubric, prep.route, max_tokens)
        answers.valid.extend(repaired.valid)
        counts["repaired"] = len(repaired.valid)
        counts["discarded"] = len(repaired.invalid)
        if not answers.valid:
            raise InvalidModelAnswerError(
                f"the model's answer stayed invalid after one repair attempt: {repaired.invalid[0][1]}"[:500],
                provider=prep.route.provider,
                model=prep.route.name,
            )
    return answers.valid, usage, counts


def run_assessment(
    gateway: Gateway, request: AssessmentRequest, *, deadline: Deadline | None = None
) -> AssessmentResult:
    started = time.monotonic()
    prep = validate_request(gateway, request)
    if not prep.code.strip():
        return static_result(prep, started)
    deadline = deadline or gateway.new_deadline()
    from lib.assessment import cfe  # imported once per worker, on its first assessment

    cfe_rows: dict[str, dict[str, str]] = {}
    if prep.cfe_key_concepts:
        cfe_rows = cfe.decide(prep.code, request.lesson or "", prep.cfe_key_concepts).rows

    usage = Usage()
    counts: dict[str, int] | None = None
    disagreements: list[str] = []
    if len(cfe_rows) == len(prep.rubric.key_concepts):  # the extractor decided everything: no model call
        rows = [cfe_rows[kc] for kc in prep.rubric.key_concepts]
        agent = f"static, {cfe.CFE_AGENT}"
    else:
        answers, usage, counts = ask_model(gateway, prep, deadline)
        voted = majority_vote(answers)
        rows = [cfe_rows.get(row["Key Concept"], row) for row in voted.rows]
        disagreements = [kc for kc in voted.disagreements if kc not in cfe_rows]
        agent = prep.route.agent + (f", {cfe.CFE_AGENT}" if cfe_rows else "")

    return AssessmentResult(
        rows,
        _metadata(
            agent,
            started,
            request,
            usage,
            prep.flags,
            num_responses=request.num_responses if counts is not None else None,
            answers=counts,
            disagreements=disagreements,
            code_feature_extractor=list(cfe_rows),
        ),
    )
