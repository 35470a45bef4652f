"""aiproxy-admin dataset build: preprocessing, layout, manifest, atomic replacement, S3 upload (moto),
and the rubric tester running offline on the built dataset with the accuracy the summary reports."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from flask import Flask
from flask.testing import FlaskClient
from moto import mock_aws

from lib.assessment.fixtures import read
from lib.assessment.tester.cli import Env
from lib.assessment.tester.cli import run as run_tester
from lib.errors import InvalidRequestError
from lib.feedback.dataset import build_dataset, normalised_hash, strip_personal
from lib.providers.gateway import Gateway
from lib.settings import Settings
from lib.store.assessment_schema import assessment_records
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
from tests.feedback.test_cli import cli_env, run  # noqa: F401 - the CLI fixture and runner

PII = "// Sprite demo by Jane Doe, jane.doe@example.org\n/* Name: Sam Lee */\n"


def test_strip_personal_only_touches_comments() -> None:
    code = PII + 'var s = createSprite(200, 200); // made by Al\nvar by = "mail me: a@b.co";\n'
    stripped = strip_personal(code)
    assert "Jane" not in stripped and "jane.doe@" not in stripped and "Sam Lee" not in stripped
    assert "// Sprite demo by [name], [email]" in stripped and "/* Name: [name] */" in stripped
    assert "// made by [name]" in stripped
    assert 'var by = "mail me: a@b.co";' in stripped  # code, not a comment: untouched
    assert stripped.count("\n") == code.count("\n")


def test_normalised_hash_ignores_comments_and_spacing() -> None:
    a = "var s = createSprite(1, 2);\ndrawSprites();\n"
    b = "// mine\nvar s  =  createSprite(1, 2);\n\n   drawSprites();   /* done */\n"
    assert normalised_hash(a) == normalised_hash(b) != normalised_hash(a.replace("1", "3"))


def label_all(client: FlaskClient, assessment_id: str, labels: dict[str, str], teacher: str = "t1") -> None:
    body = {
        "assessment_id": assessment_id,
        "teacher": teacher,
        "key_concepts": [{"key_concept": kc, "label": label} for kc, label in labels.items()],
    }
    r = client.post("/assessment/feedback", json=body, headers=AUTH)
    assert r.status_code == 200, r.json


def make_records(make_app: Callable[..., Flask]) -> tuple[Flask, dict[str, str]]:
    app = make_app()
    client = app.test_client()
    ids: dict[str, str] = {}
    programs = {
        "full": PII + PROGRAMS["full"],
        "sprite": PROGRAMS["sprite"],
        "sprite-again": "// copy\n" + PROGRAMS["sprite"].replace("\n", "\n\n"),
        "blank": "   \n",
        "partial": PROGRAMS["shapes"],
    }
    for name, code in programs.items():
        ids[name] = assess(client, code)["metadata"]["assessment_id"]
    label_all(client, ids["full"], {SEQ: E, SPRITES: C, POSITION: L})
    label_all(client, ids["sprite"], {SEQ: C, SPRITES: C, POSITION: N})
    label_all(client, ids["sprite-again"], {SEQ: E, SPRITES: E, POSITION: N})
    label_all(client, ids["blank"], {SEQ: N, SPRITES: N, POSITION: N})
    label_all(client, ids["partial"], {SEQ: E})
    counts(app)
    return app, ids


def read_labels(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text())))


def test_build_preprocesses_and_versions(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app, ids = make_records(make_app)
    # an assessment made without STORE_STUDENT_CODE has no code: never in a dataset
    other = make_app(store_student_code=False)
    no_code = assess(other.test_client(), PROGRAMS["shapes"])["metadata"]["assessment_id"]
    label_all(other.test_client(), no_code, {SEQ: E, SPRITES: N, POSITION: N})
    counts(other)
    out = tmp_path / "datasets" / "prod-l11"
    manifest = build_dataset(engine_of(app), lesson=LESSON, since=None, out=out)
    folder = out / LESSON
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{ids['full']}.js", f"{ids['sprite']}.js", "actual_labels.csv"]
    )
    assert read_labels(folder / "actual_labels.csv") == [
        ["student", *KCS],
        [ids["full"], E, C, L],
        [ids["sprite"], C, C, N],
    ]
    full = (folder / f"{ids['full']}.js").read_text()
    assert "Jane" not in full and "example.org" not in full and full.endswith(PROGRAMS["full"])
    assert manifest["counts"] == {
        "records_with_code": 5,
        "other_rubric": 0,
        "blank": 1,
        "not_fully_labelled": 1,
        "duplicates": 1,
        "students": 2,
    }
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest
    assert manifest["filters"]["lesson"] == LESSON and manifest["key_concepts"] == list(KCS)
    # the same content is the same version; the folder is replaced whole, no staging left behind
    (out / "stale.txt").write_text("x")
    again = build_dataset(engine_of(app), lesson=LESSON, since=None, out=out)
    assert again["version"] == manifest["version"] and not (out / "stale.txt").exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["prod-l11"]


def test_build_cli_and_upload_to_s3(
    cli_env: None,  # noqa: F811
    make_app: Callable[..., Flask],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    make_records(make_app)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    out = tmp_path / "datasets" / "prod-l11"
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="cdo-ai")
        code, stdout, _ = run(capsys, "dataset", "build", "--lesson", LESSON, "--out", str(out), "--upload")
        assert code == 0, stdout
        assert (
            "2 students" in stdout
            and "uploaded 4 files to s3://cdo-ai/teaching_assistant/datasets/prod-l11/" in stdout
        )
        keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="cdo-ai")["Contents"])
    assert keys[-1] == "teaching_assistant/datasets/prod-l11/manifest.json"
    assert f"teaching_assistant/datasets/prod-l11/{LESSON}/actual_labels.csv" in keys
    code, _, err = run(capsys, "dataset", "build", "--lesson", "no-such-lesson", "--out", str(tmp_path / "x"))
    assert code == 2 and "no fully labelled" in err
    code, _, err = run(capsys, "dataset", "build", "--lesson", LESSON, "--out", str(tmp_path / "bad name"))
    assert code == 2


def write_experiment(root: Path, name: str = "cfe-all") -> None:
    """An experiment whose params make the extractor decide every key concept (no model call)."""
    folder = root / "experiments" / name / LESSON
    folder.mkdir(parents=True)
    params = {
        "model": "gpt-4o",
        "num-responses": "1",
        "temperature": "0.2",
        "response-type": "json",
        "lesson": LESSON,
        "code-feature-extractor": list(KCS),
    }
    (folder / "params.json").write_text(json.dumps(params))
    (folder / "system_prompt.txt").write_text(read("cfe_prompt.txt"))
    (folder / "standard_rubric.csv").write_text(read("cfe_rubric.csv"))


def offline_tester_summary(root: Path, settings: Settings) -> dict[str, Any]:
    """The rubric tester's summary of an offline run (``write_experiment``) on the dataset ``prod``
    built under ``root``: what the dataset tests compare with the feedback summary."""
    write_experiment(root)
    argv = [
        "--data-root",
        str(root),
        "--dataset-name",
        "prod",
        "--experiment-name",
        "cfe-all",
        "--no-progress",
    ]
    assert run_tester(argv, Env(gateway=Gateway(settings), settings=settings)) == 0
    summary: dict[str, Any] = json.loads((root / "experiments/cfe-all/output/summary.json").read_text())
    return summary


def test_rubric_tester_on_the_built_dataset_matches_the_summary(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    ids = {name: assess(client, code)["metadata"]["assessment_id"] for name, code in PROGRAMS.items()}
    label_all(client, ids["full"], {SEQ: E, SPRITES: C, POSITION: L})
    label_all(client, ids["sprite"], {SEQ: C, SPRITES: C, POSITION: E})
    label_all(client, ids["shapes"], {SEQ: E, SPRITES: L, POSITION: N})
    summary = client.get("/assessment/feedback/summary", headers=AUTH).json
    build_dataset(engine_of(app), lesson=LESSON, since=None, out=tmp_path / "datasets" / "prod")
    tester = offline_tester_summary(tmp_path, make_settings())
    assert tester["totals"]["errors"] == 0 and tester["totals"]["called"] == 0
    assert summary["pairs"] == tester["statistics"]["overall"]["n"] == 9
    assert tester["statistics"]["overall"] == summary["statistics"]["overall"]
    assert tester["statistics"]["lessons"][LESSON] == summary["statistics"]["lessons"][LESSON]


@pytest.mark.parametrize("lesson", ["../../escaped", "/tmp/abs", "a/b", ".hidden"])
def test_a_lesson_that_is_not_a_name_never_becomes_a_path(
    app: Flask, client: FlaskClient, tmp_path: Path, lesson: str
) -> None:
    made = assess(client, PROGRAMS["sprite"])["metadata"]["assessment_id"]
    label_all(client, made, dict.fromkeys(KCS, E))
    counts(app)
    with engine_of(app).begin() as conn:  # /assessment callers may send any text as the lesson
        conn.execute(assessment_records.update().values(lesson=lesson))
    out = tmp_path / "work" / "datasets" / "prod"
    with pytest.raises(InvalidRequestError, match="is not a name") as info:
        build_dataset(engine_of(app), lesson=lesson, since=None, out=out)
    assert info.value.field == "lesson"
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "work").exists()
