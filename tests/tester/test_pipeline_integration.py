"""The rubric tester on the real pipeline, gateway and openai SDK against the loopback model."""

from __future__ import annotations

import json
import time
from pathlib import Path

from lib.assessment.tester.cli import Env, run
from lib.providers.gateway import Gateway
from tests.conftest import make_settings
from tests.support.openai_mock import CHAT, Reply
from tests.tester.conftest import KCS, C, E, L, N, write_lesson
from tests.tester.mock_model import grading_mock

ARGS = ["--dataset-name", "ds", "--experiment-name", "exp", "--no-progress"]
STUDENTS = {f"s{i}": ((E, C, L, N)[i % 4], E, N) for i in range(6)}


def test_real_pipeline_end_to_end(tmp_path: Path) -> None:
    params = {"model": "gpt-4o", "num-responses": "3", "temperature": "0", "response-type": "json"}
    write_lesson(tmp_path, "L1", STUDENTS, params=params, codes={"s5": "// only a comment\n"})
    with grading_mock(KCS) as mock:
        settings = make_settings(openai_api_key="sk-loopback", openai_base_url=mock.base_url)
        env = Env(gateway=Gateway(settings), settings=settings)
        assert run(["--data-root", str(tmp_path), *ARGS, "-r"], env) == 0
        bodies = [r.json for r in mock.calls(CHAT)]
    # s5 is blank after comment removal: the pipeline answers it without a call
    assert len(bodies) == 5
    assert all(b["n"] == 3 and b["temperature"] == 0 and b["model"] == "gpt-4o" for b in bodies)
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    # the blank program is not "called": it is counted apart (the mock saw 5 requests)
    assert summary["totals"]["errors"] == 0 and summary["totals"]["called"] == 5
    assert summary["totals"]["no_model_call"] == 1 and summary["totals"]["assessments"] == 6
    assert summary["totals"]["prompt_tokens"] == 5 * 900
    assert summary["statistics"]["overall"]["n"] == 18
    blank = json.loads(
        next((tmp_path / "experiments/exp/output/L1/cached_responses").glob("s5-*.json")).read_text()
    )
    assert blank["metadata"]["agent"] == "static"


def test_429_with_retry_after_pauses_all_workers(tmp_path: Path) -> None:
    write_lesson(tmp_path, "L1", STUDENTS)
    with grading_mock(KCS) as mock:
        mock.script(
            CHAT,
            Reply(
                status=429,
                body={
                    "error": {
                        "message": "Rate limit reached",
                        "type": "requests",
                        "code": "rate_limit_exceeded",
                    }
                },
                headers={"Retry-After": "1"},
            ),
        )
        # no gateway retries: the 429 reaches the tester's shared limiter
        settings = make_settings(openai_api_key="sk-loopback", openai_base_url=mock.base_url, max_retries=0)
        env = Env(gateway=Gateway(settings), settings=settings)
        started = time.monotonic()
        assert run(["--data-root", str(tmp_path), *ARGS, "-w", "3"], env) == 0
        elapsed = time.monotonic() - started
        calls = mock.calls(CHAT)
    assert len(calls) == 7  # 6 students + the retried one
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["totals"]["rate_limits"] >= 1 and summary["totals"]["errors"] == 0
    assert summary["totals"]["backoff_s"] > 0.5  # workers actually waited for Retry-After
    assert elapsed >= 1.0


def test_timeout_option_bounds_each_assessment(tmp_path: Path) -> None:
    write_lesson(tmp_path, "L1", {"s1": (E, E, E)})
    with grading_mock(KCS, delay=2.0) as mock:
        settings = make_settings(openai_api_key="sk-loopback", openai_base_url=mock.base_url, max_retries=0)
        env = Env(gateway=Gateway(settings), settings=settings)
        started = time.monotonic()
        assert run(["--data-root", str(tmp_path), *ARGS, "--timeout", "0.5"], env) == 3
        assert time.monotonic() - started < 1.9
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["errors"][0]["kind"] == "timeout"


def test_bundled_sample_runs_offline_on_the_code_feature_extractor(tmp_path: Path) -> None:
    """The README's offline command: no keys, no network, no model call (the CFE decides every goal)."""
    settings = make_settings()
    gateway = Gateway(settings, factories={})  # no provider can even be built
    assert (
        run(["--data-root", str(tmp_path), "--dataset-name", "sample", "--no-progress"], Env(gateway=gateway))
        == 0
    )
    summary = json.loads((tmp_path / "output/sample/summary.json").read_text())
    assert summary["totals"]["errors"] == 0 and summary["totals"]["assessments"] == 8
    assert summary["statistics"]["overall"]["n"] == 24
    answers = [
        json.loads(p.read_text()) for p in (tmp_path / "output/sample").rglob("cached_responses/*.json")
    ]
    assert {a["metadata"]["agent"] for a in answers} <= {"static", "static, code feature extractor"}
