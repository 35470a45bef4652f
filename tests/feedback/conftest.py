"""Fixtures for assessment records and teacher feedback: the app on SQLite and PostgreSQL, and
assessments decided entirely by the code feature extractor (csd3-2023-L11), so no model is called
and the AI labels are a deterministic function of the code (the rubric tester reproduces them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lib.assessment.fixtures import read
from lib.store.assessment_schema import assessment_feedback, assessment_records
from src.routes.feedback import recorder
from tests.conftest import API_KEY, make_settings

AUTH = {"Authorization": API_KEY}
LESSON = "csd3-2023-L11"
SEQ, SPRITES, POSITION = (
    "Program Development - Program Sequence",
    "Modularity - Sprites and Sprite Properties",
    "Position - Elements and the Coordinate System",
)
KCS = (SEQ, SPRITES, POSITION)
E, C, L, N = "Extensive Evidence", "Convincing Evidence", "Limited Evidence", "No Evidence"

#: Programs with different extractor verdicts.
PROGRAMS = {
    "full": read("cfe_code.js"),
    "sprite": "var s = createSprite(200, 200);\ns.scale = 0.5;\ndrawSprites();\n",
    "shapes": "background('blue');\nfill('red');\nrect(10, 10, 50, 50);\nellipse(200, 200, 40, 40);\n",
}


def cfe_form(code: str, **overrides: str) -> dict[str, str]:
    form = {
        "code": code,
        "prompt": read("cfe_prompt.txt"),
        "rubric": read("cfe_rubric.csv"),
        "model": "gpt-4o",
        "lesson": LESSON,
        "response-type": "json",
        "code-feature-extractor": json.dumps(list(KCS)),
    }
    form.update(overrides)
    return form


@pytest.fixture
def make_app(
    database_url: str, tmp_path: Path, app_factory: Callable[..., Flask]
) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def build(**overrides: Any) -> Flask:
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database_url": database_url,
            "store_student_code": True,
        }
        values.update(overrides)
        app = app_factory(make_settings(**values))
        apps.append(app)
        return app

    yield build
    for app in apps:
        recorder(app).close()
        app.extensions["aiproxy.accounts"].close()
        app.extensions["aiproxy.accounts"].store.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def assess(client: FlaskClient, code: str, **overrides: str) -> dict[str, Any]:
    r = client.post("/assessment", data=cfe_form(code, **overrides), headers=AUTH)
    assert r.status_code == 200, r.json
    return dict(r.json)


def engine_of(app: Flask) -> sa.Engine:
    return recorder(app).engine


def counts(app: Flask) -> tuple[int, int]:
    recorder(app).writer.flush()
    with engine_of(app).connect() as conn:
        records = conn.execute(sa.select(sa.func.count()).select_from(assessment_records)).scalar_one()
        feedback = conn.execute(sa.select(sa.func.count()).select_from(assessment_feedback)).scalar_one()
    return int(records), int(feedback)


#: The hand-checked case: program per assessment, then (teacher, key concept, label, thumbs) in order.
HAND_CASE: dict[str, tuple[str, list[tuple[str, str, str | None, str | None]]]] = {
    "A": ("full", [("t1", SEQ, E, None), ("t1", SPRITES, None, "up"), ("t1", POSITION, C, None)]),
    "B": ("sprite", [("t1", SEQ, C, None), ("t1", SPRITES, C, "up"), ("t1", POSITION, None, "down")]),
    "C": ("shapes", [("t1", SEQ, E, None), ("t1", SPRITES, L, None), ("t2", SPRITES, N, None)]),
    "D": ("shapes", []),
}


def run_hand_case(post: Callable[[str, dict[str, Any]], Any]) -> dict[str, str]:
    """Assess the four programs and send the teachers' feedback; {case: assessment id}.

    ``post(path, form_or_json)`` returns (status, json).  By hand (human, AI) pairs:
    A (E,E) (E,E) (C,L); B (C,E) (C,C); C (E,E) (N,N) (t2's later N wins); B's thumbs down alone
    makes no pair.  Exact 5/7, pass/fail 6/7, kappa 19/33."""
    ids: dict[str, str] = {}
    for case, (program, verdicts) in HAND_CASE.items():
        status, body = post("/assessment", cfe_form(PROGRAMS[program]))
        assert status == 200, body
        ids[case] = body["metadata"]["assessment_id"]
        for teacher, kc, label, thumbs in verdicts:
            entry = {
                "key_concept": kc,
                **({"label": label} if label else {}),
                **({"thumbs": thumbs} if thumbs else {}),
            }
            status, body = post(
                "/assessment/feedback",
                {"assessment_id": ids[case], "teacher": teacher, "key_concepts": [entry]},
            )
            assert status == 200, body
    return ids


def client_post(client: FlaskClient) -> Callable[[str, dict[str, Any]], Any]:
    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if path == "/assessment":
            r = client.post(path, data=body, headers=AUTH)
        else:
            r = client.post(path, json=body, headers=AUTH)
        return r.status_code, r.json

    return post
