"""The teacher-feedback loop end to end under gunicorn (two workers), on SQLite and PostgreSQL:

assess -> feedback (bad feedback refused, nothing changed) -> summary numbers checked by hand ->
SIGTERM (queued records written) -> dataset build -> the rubric tester, offline (code feature
extractor), on the built dataset gives the summary's accuracy -> fine-tuning JSONL validated.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from lib.feedback.dataset import build_dataset
from lib.feedback.finetune import export_finetune, validate_line
from lib.store import Store
from lib.store.assessment_schema import assessment_feedback, assessment_records
from tests.conftest import make_settings
from tests.e2e.test_keys_ledger_service import call
from tests.feedback.conftest import LESSON, SPRITES, E, run_hand_case
from tests.feedback.test_dataset import offline_tester_summary
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "e2e-feedback-key"


def poster(port: int) -> Any:
    def post(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        # a record queued by the other worker is in the database within LEDGER_FLUSH_SECONDS
        deadline = time.monotonic() + 5
        while True:
            status, answer = call(port, path, body, key=KEY)
            if status != 404 or time.monotonic() > deadline:
                return status, answer
            time.sleep(0.05)

    return post


def counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (
            conn.execute(sa.select(sa.func.count()).select_from(assessment_records)).scalar_one(),
            conn.execute(sa.select(sa.func.count()).select_from(assessment_feedback)).scalar_one(),
        )


def test_assess_feedback_summary_dataset_tester_finetune(database_url: str, tmp_path: Path) -> None:
    env = {
        "AIPROXY_API_KEY": KEY,
        "DATABASE_URL": database_url,
        "STORE_STUDENT_CODE": "1",
        "LEDGER_FLUSH_SECONDS": "0.1",
    }
    with Service(env=env, workers=2) as svc:
        ids = run_hand_case(poster(svc.port))
        time.sleep(0.5)  # both workers' queues flushed
        store = Store(database_url)
        before = counts(store.engine)
        assert before == (4, 9)
        refused = [
            (
                {
                    "assessment_id": "0" * 32,
                    "teacher": "t1",
                    "key_concepts": [{"key_concept": SPRITES, "label": E}],
                },
                404,
            ),
            (
                {
                    "assessment_id": ids["A"],
                    "teacher": "t1",
                    "key_concepts": [{"key_concept": "Loops", "label": E}],
                },
                400,
            ),
            (
                {
                    "assessment_id": ids["A"],
                    "teacher": "t1",
                    "key_concepts": [{"key_concept": SPRITES, "label": "A+"}],
                },
                400,
            ),
            (
                {
                    "assessment_id": ids["A"],
                    "teacher": "t1",
                    "key_concepts": [{"key_concept": SPRITES, "label": E}],
                },
                409,
            ),
        ]
        for body, status in refused:
            assert call(svc.port, "/assessment/feedback", body, key=KEY)[0] == status
        assert counts(store.engine) == before
        status, summary = call(svc.port, "/assessment/feedback/summary", key=KEY, method="GET")
        assert status == 200
        overall = summary["statistics"]["overall"]
        assert (summary["pairs"], overall["exact"]["k"], overall["pass_fail"]["k"]) == (7, 5, 6)
        assert overall["kappa"] == pytest.approx(19 / 33)
        status, page = call(svc.port, "/assessment/feedback/report", key=KEY, method="GET")
        assert status == 200 and b"Production accuracy" in page
        # label the rest so every judged program is a complete dataset row
        rest = [("B", "Position - Elements and the Coordinate System", "No Evidence")]
        rest += [("C", "Position - Elements and the Coordinate System", "Limited Evidence")]
        for case, kc, label in rest:
            body = {
                "assessment_id": ids[case],
                "teacher": "t3",
                "key_concepts": [{"key_concept": kc, "label": label}],
            }
            assert call(svc.port, "/assessment/feedback", body, key=KEY)[0] == 200
        status, summary = call(svc.port, "/assessment/feedback/summary", key=KEY, method="GET")
        assert summary["pairs"] == 9
    assert svc.proc is not None and svc.proc.returncode == 0

    build_dataset(store.engine, lesson=LESSON, since=None, out=tmp_path / "datasets" / "prod")
    tester = offline_tester_summary(tmp_path, make_settings(data_dir=tmp_path))
    assert tester["totals"]["called"] == 0 and tester["totals"]["errors"] == 0
    # the dataset holds A, B and C (D has no feedback): exactly the summary's rows
    assert tester["statistics"] == summary["statistics"]

    result = export_finetune(store.engine, fmt="bedrock-nova", out=tmp_path / "tune", validation_percent=34)
    assert result.train + result.validation == 3 and result.cost_usd is not None
    for split in ("train", "validation"):
        for line in (tmp_path / "tune" / f"{split}.jsonl").read_text().splitlines():
            validate_line("bedrock-nova", json.loads(line))
    store.dispose()
