"""Schemathesis against the app's own ``/openapi.json``: every route, valid and invalid input, with and
without the key; 0 server errors and 0 responses outside the documented statuses, media types and schemas.

The app runs in process (WSGI) with its real providers: the real ``openai`` SDK against the loopback
OpenAI stand-in, real boto3 against the loopback bedrock-runtime stand-in.  Model name ``local`` is
served by a small fake (the embedded models have their own tests; here they would take seconds per call).
Both stand-ins answer OK, so any 5xx is a bug.

Size: ``FUZZ_SCALE`` multiplies the examples per operation (default 1: about 1,600 requests, under a minute
on 2 cores); ``FUZZ_RANDOM=1`` explores with a fresh seed instead of the fixed, reproducible one.
"""

from __future__ import annotations

import collections
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    ModelInfo,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.gateway import DEFAULT_FACTORIES, Gateway
from tests.conftest import API_KEY, make_settings
from tests.fuzz.conftest import FUZZ_SUMMARY
from tests.support import bedrock_mock as bm
from tests.support import image_upstreams as iu
from tests.support.openai_mock import CHAT, OpenAIMock, completion

pytestmark = pytest.mark.slow

SONNET = "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"
#: Routable names mixed into generated bodies and query strings (random strings are unknown models: 400).
#: Chat-like routes get chat models and embedding routes embedding models: the stand-ins answer any
#: model, so an embedding model asked to grade a program would "answer" nonsense (a 502 by design).
CHAT_MODELS = [
    "gpt-4o",
    "gpt-4o-mini",
    SONNET,
    "bedrock.us.anthropic.claude-haiku-4-5-20251001-v1:0",
    "local",
]
EMBED_MODELS = [
    "text-embedding-3-small",
    "bedrock.amazon.titan-embed-text-v1",
    "bedrock.amazon.titan-embed-text-v2:0",
    "local",
]
#: Image routes get image models (``local`` has none: a 503 by design, see API.md).
IMAGE_MODELS = [
    "dall-e-3",
    "gpt-image-1",
    "bedrock.amazon.titan-image-generator-v2:0",
    "bedrock.amazon.nova-canvas-v1:0",
    "bedrock.stability.stable-diffusion-xl-v1",
    "bedrock.stability.sd3-5-large-v1:0",
]
DATA = Path(__file__).resolve().parent.parent / "data" / "codeorg-aiproxy"
#: Real rubrics (and, half the time, real prompts) mixed into generated assessment bodies: a random
#: string is never a rubric CSV with a `Key Concept` column, so without them every call would be a 400.
LESSONS = {
    "u3l13": {"rubric": "u3l13.csv", "prompt": "u3l13.txt"},
    "cfe": {"rubric": "cfe_rubric.csv", "prompt": "cfe_prompt.txt", "lesson": "csd3-2023-L11"},
}
SCALE = float(os.environ.get("FUZZ_SCALE", "1"))
MIN_REQUESTS = 1000


class FakeLocal:
    """Stands in for the embedded model: instant answers (schema-shaped when a schema is asked for)."""

    name = "local"

    def _text(self, request: ChatRequest) -> str:
        if request.json_schema is not None:
            return json.dumps(bm.sample_for_schema(request.json_schema.schema))
        return "local: " + (request.messages[-1].text[:40] if request.messages else "")

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        text = self._text(request)
        return ChatResult("local", "local", [Choice(i, text, "stop") for i in range(request.n)], Usage(5, 3))

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        yield ChatDelta(text=self._text(request))
        yield ChatDelta(finish_reason="stop", usage=Usage(5, 3))

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        dims = request.dimensions or 8
        return EmbedResult("local", "local", [bm.fake_vector(t, dims) for t in request.texts], Usage(3, 0))

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        return [ModelInfo("local", "local", "local")]


def openai_answer(body: dict[str, Any]) -> Any:
    """The mock's echo, or a value of the requested JSON schema (what structured output guarantees)."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if fmt.get("type") == "json_schema" and isinstance(schema, dict) and not body.get("stream"):
        text = json.dumps(bm.sample_for_schema(schema))
        return completion([text] * int(body.get("n") or 1), model=str(body.get("model", "mock")))
    return OpenAIMock._default_chat(body)


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.by_op: collections.Counter[str] = collections.Counter()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.op_statuses: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
        self.server_errors: list[str] = []
        self.failures: dict[str, str] = {}
        self.auth_mistakes: list[str] = []


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[OpenAIMock, bm.BedrockMock]]:
    with OpenAIMock() as oa, bm.BedrockMock() as br:
        oa.on(CHAT, openai_answer)
        oa.on(iu.IMAGES, iu.openai_images)
        br.on(bm.INVOKE, iu.bedrock_invoke)
        yield oa, br


@pytest.fixture(scope="module")
def fuzz_app(upstreams: tuple[OpenAIMock, bm.BedrockMock]) -> Iterator[Flask]:
    oa, br = upstreams
    mp = pytest.MonkeyPatch()
    mp.setenv("AWS_ACCESS_KEY_ID", "testing")
    mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    mp.delenv("AWS_PROFILE", raising=False)
    from src.app import create_app

    s = make_settings(
        openai_api_key="sk-fuzz-configured",
        openai_base_url=oa.base_url,
        aws_endpoint_url_bedrock_runtime=br.endpoint_url,
        default_chat_model="gpt-4o-mini",
        default_embedding_model="bedrock.amazon.titan-embed-text-v2:0",
        default_assessment_model=SONNET,
        request_deadline_seconds=10.0,
        max_retries=0,
        log_level="WARNING",
        key_hash_secret="fuzz-key-hash-secret-0123456789",  # /admin/keys on, so it is fuzzed too
    )
    gateway = Gateway(s, factories={**DEFAULT_FACTORIES, "local": lambda _s: FakeLocal()})
    app = create_app(s, gateway)
    yield app
    mp.undo()


def _auth_headers(kind: str) -> dict[str, str]:
    return {
        "raw": {"Authorization": API_KEY},
        "bearer": {"Authorization": f"Bearer {API_KEY}"},
        "wrong": {"Authorization": "not-the-key"},
        "none": {},
    }[kind]


AUTH = st.sampled_from(["raw"] * 6 + ["bearer"] * 2 + ["wrong", "none"])
FIXTURE_OVERRIDES = st.dictionaries(
    st.sampled_from(["model", "num-responses", "temperature", "api-key"]),
    st.one_of(
        st.sampled_from(
            [*CHAT_MODELS, "1", "3", "0", "-1", "11", "nan", "0.2", "2.5", "x", "", "sk-fuzz-request"]
        ),
        st.text(max_size=20),
    ),
    max_size=3,
)


def _lesson_fields(name: str, real_prompt: bool) -> dict[str, str]:
    out = {}
    for field, value in LESSONS[name].items():
        if field == "lesson":
            out[field] = value
        elif field == "rubric" or real_prompt:
            out[field] = (DATA / value).read_text(encoding="utf-8")
    return out


def _examples(op: Any, mode: GenerationMode) -> int:
    path = op.path
    has_body = bool(op.body)
    if has_body:
        n = 150 if mode.is_positive else 80
    elif path.startswith("/test/assessment"):
        n = 40 if mode.is_positive else 0
    else:
        n = 20 if mode.is_positive else 0
    return int(n * SCALE)


def _models_for(path: str) -> list[str]:
    if path.endswith("/embeddings"):
        return EMBED_MODELS
    return IMAGE_MODELS if "images" in path else CHAT_MODELS


def _run_operation(op: Any, mode: GenerationMode, tally: Tally) -> None:
    secured = bool(op.definition.raw.get("security"))
    fixture_route = op.path.startswith("/test/assessment")
    label = f"{op.label} [{mode.value}]"

    @settings(
        max_examples=_examples(op, mode),
        deadline=None,
        derandomize=os.environ.get("FUZZ_RANDOM") != "1",
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(
        case=op.as_strategy(generation_mode=mode),
        auth=AUTH,
        model=st.one_of(st.none(), st.sampled_from(_models_for(op.path))),
        overrides=FIXTURE_OVERRIDES if fixture_route else st.just({}),
        lesson=st.sampled_from(["u3l13", "cfe", None])
        if op.path == "/assessment" and mode.is_positive
        else st.none(),
        real_prompt=st.booleans(),
    )
    def check(
        case: Any,
        auth: str,
        model: str | None,
        overrides: dict[str, str],
        lesson: str | None,
        real_prompt: bool,
    ) -> None:
        if case.headers:  # the key is ours to choose; drop any generated Authorization
            case.headers = {k: v for k, v in case.headers.items() if k.lower() != "authorization"}
        if model is not None and mode.is_positive and isinstance(case.body, dict):
            case.body = {**case.body, "model": model}
        if lesson is not None and mode.is_positive and isinstance(case.body, dict):
            # The generated program (and key, model) with a real rubric: random code through comment
            # removal, the code feature extractor and the pipeline up to a 200.
            kept = {k: v for k, v in case.body.items() if k in ("code", "prompt", "api-key", "model")}
            extra = {
                "response-type": "json" if real_prompt else "tsv",
                "remove-comments": str(int(real_prompt)),
            }
            case.body = {**kept, **_lesson_fields(lesson, real_prompt), **extra}
        if overrides:
            case.query = {**(case.query or {}), **overrides}
        tally.requests += 1
        tally.by_op[label] += 1
        response = case.call(headers=_auth_headers(auth))
        tally.statuses[response.status_code] += 1
        tally.op_statuses[label][response.status_code] += 1
        if response.status_code >= 500:
            tally.server_errors.append(f"{label}: {response.status_code} {response.text[:300]}")
        if secured and auth in ("wrong", "none") and response.status_code != 401:
            tally.auth_mistakes.append(f"{label}: {auth} key -> {response.status_code}")
        if secured and auth in ("raw", "bearer") and response.status_code == 401:
            tally.auth_mistakes.append(f"{label}: valid {auth} key -> 401")
        case.validate_response(response, headers=_auth_headers(auth))

    try:
        check()
    except Unsatisfiable:  # nothing to negate (an operation without parameters or body)
        pass
    except Exception as exc:
        tally.failures[label] = str(exc)[:3000]


def test_openapi_fuzz(fuzz_app: Flask, request: pytest.FixtureRequest) -> None:
    config = schemathesis.Config.from_dict(
        {
            "checks": {
                # Schema-valid but semantically wrong input (a rubric without a `Key Concept` column,
                # an unknown model name) is rightly a 400: JSON schema cannot express those rules.
                "positive_data_acceptance": {"enabled": False},
                # A body over MAX_BODY_BYTES is rejected with 413 before it is parsed.
                "negative_data_rejection": {"expected-statuses": ["400", "401", "404", "405", "413", "415"]},
            }
        }
    )
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app, config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    spec = fuzz_app.test_client().get("/openapi.json").json
    documented = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    routes = {
        (method, rule.rule)
        for rule in fuzz_app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert routes == documented, "every route is in the OpenAPI document (and nothing else)"
    # Schemathesis leaves out the document's own route; every other operation is fuzzed.
    assert {(op.method.upper(), op.path) for op in operations} == documented - {("GET", "/openapi.json")}

    tally = Tally()
    started = time.monotonic()
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            if _examples(op, mode):
                _run_operation(op, mode, tally)
    elapsed = time.monotonic() - started

    summary = (
        f"schemathesis: {tally.requests} requests over {len(operations)} operations in {elapsed:.0f} s; "
        f"statuses {dict(sorted(tally.statuses.items()))}; server errors {len(tally.server_errors)}; "
        f"schema violations {len(tally.failures)}"
    )
    print(summary)
    for label, counts in tally.op_statuses.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    request.config.stash.setdefault(FUZZ_SUMMARY, []).append(summary)  # shown in the terminal summary
    assert not tally.server_errors, "\n".join(tally.server_errors[:10])
    assert not tally.failures, "\n\n".join(f"== {k}\n{v}" for k, v in tally.failures.items())
    assert not tally.auth_mistakes, "\n".join(tally.auth_mistakes[:10])
    assert tally.requests >= MIN_REQUESTS * min(SCALE, 1.0), summary
    assert all(tally.by_op[f"{op.label} [positive]"] for op in operations), tally.by_op
    assert tally.statuses[200] >= 200, "the fuzzing must reach the happy path too"
    assert tally.statuses[401] > 0 and tally.statuses[400] > 0
