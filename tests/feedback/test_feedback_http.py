"""Assessment records and POST /assessment/feedback in the app, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from lib.feedback.records import load_record, sha256, utcnow
from lib.feedback.retention import RetentionJob, delete_expired
from lib.store.assessment_schema import assessment_feedback, assessment_records
from tests.conftest import make_settings
from tests.feedback.conftest import (
    AUTH,
    KCS,
    LESSON,
    POSITION,
    PROGRAMS,
    SEQ,
    SPRITES,
    C,
    E,
    L,
    N,
    assess,
    counts,
    engine_of,
)


def send(client: FlaskClient, body: dict[str, Any]) -> Any:
    return client.post("/assessment/feedback", json=body, headers=AUTH)


def test_every_answer_carries_an_id_and_is_recorded(app: Flask, client: FlaskClient) -> None:
    body = assess(client, PROGRAMS["sprite"])
    meta = body["metadata"]
    assessment_id = meta["assessment_id"]
    assert len(assessment_id) == 32 and meta["agent"] == "static, code feature extractor"
    assert counts(app) == (1, 0)
    record = load_record(engine_of(app), assessment_id)
    assert record is not None
    assert record.lesson == LESSON and record.model == "gpt-4o"
    assert record.key_concepts == KCS
    assert record.ai_labels == {SEQ: E, SPRITES: C, POSITION: N}
    assert record.code == PROGRAMS["sprite"]  # STORE_STUDENT_CODE=1 in these tests
    assert record.code_sha256 == sha256(PROGRAMS["sprite"])
    assert record.rubric_sha256 == sha256(record.rubric) and record.prompt_sha256 == sha256(record.prompt)
    # two answers never share an id
    assert assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"] != assessment_id


def test_code_is_not_stored_by_default(make_app: Callable[..., Flask]) -> None:
    app = make_app(store_student_code=False)
    client = app.test_client()
    assessment_id = assess(client, PROGRAMS["full"])["metadata"]["assessment_id"]
    counts(app)
    record = load_record(engine_of(app), assessment_id)
    assert record is not None and record.code is None
    assert record.code_sha256 == sha256(PROGRAMS["full"])
    # feedback may send the code; without STORE_STUDENT_CODE it is checked but still not kept
    r = send(
        client,
        {
            "assessment_id": assessment_id,
            "teacher": "t1",
            "key_concepts": [{"key_concept": SEQ, "thumbs": "up"}],
            "code": PROGRAMS["full"],
        },
    )
    assert r.status_code == 200, r.json
    stored = load_record(engine_of(app), assessment_id)
    assert stored is not None and stored.code is None


def test_feedback_is_stored_and_idempotent(app: Flask, client: FlaskClient) -> None:
    assessment_id = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    body = {
        "assessment_id": assessment_id,
        "teacher": "teacher-7",
        "key_concepts": [
            {"key_concept": SEQ, "thumbs": "up"},
            # the rubric's spelling is matched loosely, stored as the rubric spells it
            {"key_concept": "modularity -  SPRITES and sprite properties", "label": L, "thumbs": "down"},
        ],
        "comment": "close",
    }
    r = send(client, body)
    assert r.status_code == 200, r.json
    assert r.json == {"assessment_id": assessment_id, "created": [SEQ, SPRITES], "unchanged": []}
    again = send(client, body)
    assert again.status_code == 200
    assert again.json == {"assessment_id": assessment_id, "created": [], "unchanged": [SEQ, SPRITES]}
    # another teacher on the same assessment is another row
    other = send(
        client, {**body, "teacher": "teacher-8", "key_concepts": [{"key_concept": POSITION, "label": N}]}
    )
    assert other.status_code == 200 and other.json["created"] == [POSITION]
    assert counts(app) == (1, 3)
    with engine_of(app).connect() as conn:
        rows = (
            conn.execute(sa.select(assessment_feedback).order_by(assessment_feedback.c.id)).mappings().all()
        )
    assert [(r["key_concept"], r["teacher"], r["label"], r["thumbs"]) for r in rows] == [
        (SEQ, "teacher-7", None, "up"),
        (SPRITES, "teacher-7", L, "down"),
        (POSITION, "teacher-8", N, None),
    ]
    assert rows[0]["comment"] == "close" and rows[0]["key_id"] == "root"


def test_form_posts_are_accepted(app: Flask, client: FlaskClient) -> None:
    assessment_id = assess(client, PROGRAMS["shapes"])["metadata"]["assessment_id"]
    form = {
        "assessment_id": assessment_id,
        "teacher": "t-form",
        "key_concepts": json.dumps([{"key_concept": SPRITES, "label": N}]),
    }
    r = client.post("/assessment/feedback", data=form, headers=AUTH)
    assert r.status_code == 200, r.json
    assert r.json["created"] == [SPRITES]


def test_bad_feedback_is_refused_and_changes_nothing(app: Flask, client: FlaskClient) -> None:
    assessment_id = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    good = {
        "assessment_id": assessment_id,
        "teacher": "t1",
        "key_concepts": [{"key_concept": SEQ, "label": E}],
    }
    assert send(client, good).status_code == 200
    before = counts(app)

    def refused(body: dict[str, Any], status: int, field: str) -> None:
        r = send(client, body)
        assert r.status_code == status, r.json
        assert r.json["field"] == field, r.json
        assert counts(app) == before

    refused({**good, "assessment_id": "0" * 32}, 404, "assessment_id")
    bad_kc = [{"key_concept": SPRITES, "label": C}, {"key_concept": "Loops", "label": E}]
    refused({**good, "key_concepts": bad_kc}, 400, "key_concepts.1.key_concept")
    bad_label = [{"key_concept": SPRITES, "label": C}, {"key_concept": POSITION, "label": "Great"}]
    refused({**good, "key_concepts": bad_label}, 400, "key_concepts.1.label")
    refused({**good, "key_concepts": [{"key_concept": SPRITES}]}, 400, "key_concepts.0.label")
    refused(
        {**good, "key_concepts": [{"key_concept": SPRITES, "thumbs": "sideways"}]},
        400,
        "key_concepts.0.thumbs",
    )
    refused({**good, "key_concepts": []}, 400, "key_concepts")
    refused({**good, "teacher": " "}, 400, "teacher")
    refused({**good, "code": "var x = 1;"}, 400, "code")
    refused({"teacher": "t1", "key_concepts": good["key_concepts"]}, 400, "assessment_id")
    # the same teacher and key concept with another label: 409, and the new key concept is not added
    conflict = [{"key_concept": SPRITES, "label": C}, {"key_concept": SEQ, "label": N}]
    refused({**good, "key_concepts": conflict}, 409, "key_concepts")


def test_feedback_needs_auth(client: FlaskClient) -> None:
    assert client.post("/assessment/feedback", json={}).status_code == 401


def test_retention_deletes_old_records_and_their_feedback(app: Flask, client: FlaskClient) -> None:
    old_id = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    new_id = assess(client, PROGRAMS["shapes"])["metadata"]["assessment_id"]
    for assessment_id in (old_id, new_id):
        fb = {
            "assessment_id": assessment_id,
            "teacher": "t",
            "key_concepts": [{"key_concept": SEQ, "label": E}],
        }
        assert send(client, fb).status_code == 200
    engine = engine_of(app)
    with engine.begin() as conn:
        conn.execute(
            assessment_records.update()
            .where(assessment_records.c.id == old_id)
            .values(created_at=utcnow() - timedelta(days=31))
        )
    assert delete_expired(engine, 60) == (0, 0)
    assert delete_expired(engine, 30) == (1, 1)
    assert load_record(engine, old_id) is None and load_record(engine, new_id) is not None
    assert counts(app) == (1, 1)
    assert RetentionJob(engine, 30, 60).run_once() == (0, 0)


def test_retention_job_runs_in_the_app(make_app: Callable[..., Flask]) -> None:
    app = make_app(record_retention_days=1, record_retention_interval_seconds=0.05)
    job = app.extensions["aiproxy.assessment_records.retention"]
    client = app.test_client()
    assessment_id = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    counts(app)
    with engine_of(app).begin() as conn:
        conn.execute(assessment_records.update().values(created_at=utcnow() - timedelta(days=2)))
    deadline = utcnow() + timedelta(seconds=10)
    while load_record(engine_of(app), assessment_id) is not None and utcnow() < deadline:
        job._stop.wait(0.05)
    job.stop()
    assert load_record(engine_of(app), assessment_id) is None


def test_blank_retention_setting_means_keep(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECORD_RETENTION_DAYS", "")
    assert make_settings().record_retention_days is None
    monkeypatch.setenv("RECORD_RETENTION_DAYS", "30")
    assert make_settings().record_retention_days == 30
