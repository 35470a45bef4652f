"""Production accuracy (GET /assessment/feedback/summary, the HTML report, aiproxy-admin feedback
report) on a small case whose numbers were worked out by hand (tests/feedback/conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lib.feedback.records import utcnow
from lib.store.assessment_schema import assessment_records
from tests.feedback.conftest import (
    AUTH,
    KCS,
    LESSON,
    POSITION,
    SEQ,
    SPRITES,
    client_post,
    counts,
    engine_of,
    run_hand_case,
)


def test_summary_numbers_match_the_hand_count(app: Flask, client: FlaskClient) -> None:
    run_hand_case(client_post(client))
    r = client.get("/assessment/feedback/summary", headers=AUTH)
    assert r.status_code == 200, r.json
    s = r.json
    assert (s["assessments"], s["assessments_with_feedback"], s["pairs"]) == (4, 3, 7)
    assert s["thumbs_down_without_label"] == 1
    overall = s["statistics"]["overall"]
    assert overall["exact"]["k"] == 5 and overall["exact"]["n"] == 7
    assert overall["pass_fail"]["k"] == 6
    # Wilson 95 % for 5/7 by hand: centre 0.638357, half-width 0.279423
    assert overall["exact"]["ci95"] == pytest.approx([0.358934, 0.917780], abs=1e-5)
    assert overall["kappa"] == pytest.approx(19 / 33)
    lesson = s["statistics"]["lessons"][LESSON]
    assert list(lesson["key_concepts"]) == list(KCS)
    by_kc = lesson["key_concepts"]
    assert (by_kc[SEQ]["exact"]["k"], by_kc[SEQ]["n"], by_kc[SEQ]["pass_fail"]["k"]) == (2, 3, 3)
    assert (by_kc[SPRITES]["exact"]["k"], by_kc[SPRITES]["n"]) == (3, 3)
    assert (by_kc[POSITION]["exact"]["k"], by_kc[POSITION]["pass_fail"]["k"], by_kc[POSITION]["n"]) == (
        0,
        0,
        1,
    )
    (week,) = s["weekly"][LESSON]
    year, number, _ = utcnow().isocalendar()
    assert week["week"] == f"{year}-W{number:02d}" and week["n"] == 7 and week["exact"]["k"] == 5


def test_filters_and_the_html_report(app: Flask, client: FlaskClient) -> None:
    ids = run_hand_case(client_post(client))
    counts(app)
    with engine_of(app).begin() as conn:
        conn.execute(
            assessment_records.update()
            .where(assessment_records.c.id == ids["A"])
            .values(created_at=utcnow() - timedelta(days=30))
        )
    since = (utcnow() - timedelta(days=7)).date().isoformat()
    recent = client.get(f"/assessment/feedback/summary?since={since}", headers=AUTH).json
    assert recent["pairs"] == 4 and recent["statistics"]["overall"]["exact"]["k"] == 3
    other = client.get("/assessment/feedback/summary?lesson=csd3-2023-L7", headers=AUTH).json
    assert other["pairs"] == 0 and other["statistics"]["lessons"] == {}
    bad = client.get("/assessment/feedback/summary?since=yesterday", headers=AUTH)
    assert bad.status_code == 400 and bad.json["field"] == "since"
    unknown = client.get("/assessment/feedback/summary?lessons=x", headers=AUTH)
    assert unknown.status_code == 400 and unknown.json["field"] == "lessons"
    page = client.get("/assessment/feedback/report", headers=AUTH)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Production accuracy" in html and "71.4%" in html and "<script src" not in html
    assert SPRITES in html and "Trend by week" in html
