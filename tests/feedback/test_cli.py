"""aiproxy-admin feedback import|report and records purge against SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from lib.feedback.records import utcnow
from lib.store.assessment_schema import assessment_records
from tests.feedback.conftest import (
    AUTH,
    POSITION,
    PROGRAMS,
    SEQ,
    SPRITES,
    C,
    E,
    L,
    assess,
    counts,
    engine_of,
)
from tests.store.test_admin_cli import run


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STORE_STUDENT_CODE", "1")


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, ["assessment_id", "teacher", "key_concept", "label", "thumbs", "comment", "code"]
    )
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue())
    return path


def test_import_report_and_purge(
    cli_env: None, app: Flask, client: FlaskClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    second = assess(client, PROGRAMS["shapes"])["metadata"]["assessment_id"]
    counts(app)
    rows = [
        {"assessment_id": first, "teacher": "t1", "key_concept": SEQ, "label": E},
        {"assessment_id": first, "teacher": "t1", "key_concept": SPRITES, "thumbs": "up", "comment": "ok"},
        {"assessment_id": second, "teacher": "t1", "key_concept": SPRITES, "label": L},
        # refused as a whole: a bad label in the second submission's other row
        {"assessment_id": second, "teacher": "t1", "key_concept": POSITION, "label": "Great"},
        {"assessment_id": "f" * 32, "teacher": "t1", "key_concept": SEQ, "label": C},
    ]
    path = write_csv(tmp_path / "feedback.csv", rows)
    code, out, err = run(capsys, "feedback", "import", str(path))
    assert code == 1
    assert "3 submissions: 2 key concepts stored, 0 already stored, 2 submissions refused" in out
    assert "lines 4, 5: invalid_request" in err and "line 6: not_found" in err
    assert counts(app) == (2, 2)
    # importing again changes nothing
    code, out, _ = run(capsys, "feedback", "import", str(path))
    assert "0 key concepts stored, 2 already stored" in out and counts(app) == (2, 2)

    html = tmp_path / "report.html"
    code, out, _ = run(capsys, "feedback", "report", "--json", "--html", str(html))
    assert code == 0
    cli_summary = json.loads(out)
    http_summary = client.get("/assessment/feedback/summary", headers=AUTH).json
    assert cli_summary["statistics"] == http_summary["statistics"]
    assert cli_summary["pairs"] == 2 and cli_summary["statistics"]["overall"]["exact"]["k"] == 2
    assert "Production accuracy" in html.read_text()
    code, out, _ = run(capsys, "feedback", "report", "--since", "2001-01-01")
    assert code == 0 and "n=2  100.0% [" in out

    with engine_of(app).begin() as conn:
        conn.execute(
            assessment_records.update()
            .where(assessment_records.c.id == first)
            .values(created_at=utcnow() - timedelta(days=10))
        )
    assert run(capsys, "records", "purge")[0] == 2  # no --days and no RECORD_RETENTION_DAYS
    code, out, _ = run(capsys, "records", "purge", "--days", "5")
    assert code == 0 and "deleted 1 records and 2 feedback rows" in out
    assert counts(app) == (1, 0)


def test_bad_import_files(cli_env: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "missing.csv"
    assert run(capsys, "feedback", "import", str(missing))[0] == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("assessment_id,teacher\nx,y\n")
    code, _, err = run(capsys, "feedback", "import", str(bad))
    assert code == 2 and "lacks key_concept" in err
