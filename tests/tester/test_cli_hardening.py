"""Names that become paths or S3 keys are refused; the console names failures; --new-labels writes the
AI's labels file; the report keeps prompt and rubric, sorts students naturally, says who is who."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lib.assessment.tester.cli import Env, run
from lib.assessment.tester.export import export_example
from lib.errors import AuthenticationError, InvalidRequestError, UpstreamUnavailableError
from lib.providers.gateway import Gateway
from tests.conftest import make_settings
from tests.tester.conftest import KCS, C, E, L, N, ScriptedAssess, write_lesson

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--dataset-name", "ds", "--experiment-name", "exp"]


def _tree(path: Path) -> set[str]:
    return {str(p.relative_to(path)) for p in path.rglob("*")}


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--dataset-name", "../../x", "--experiment-name", "exp"], "--dataset-name"),
        (["--dataset-name", "ds", "--experiment-name", "../../x"], "--experiment-name"),
        (["--dataset-name", "ds", "--release-name", "../x"], "--release-name"),
        (["--dataset-name", "/etc", "--experiment-name", "exp"], "--dataset-name"),
        (["--dataset-name", "ds", "--experiment-name", "/tmp/exp"], "--experiment-name"),
        ([*ARGS, "--student-ids", "s1,../../../../x"], "--student-ids"),
        ([*ARGS, "--student-ids", "/etc/passwd"], "--student-ids"),
        ([*ARGS, "--lesson-names", "L1,../L1"], "--lesson-names"),
        ([*ARGS, "--lesson-names", ".."], "--lesson-names"),
        ([*ARGS, "--s3-prefix", "teaching_assistant/../other"], "--s3-prefix"),
        ([*ARGS, "--s3-bucket", "cdo-ai/../x"], "--s3-bucket"),
        (["--dataset-name", "ds", "--experiment-name=.hidden"], "--experiment-name"),
        (["--dataset-name", "ds", "--experiment-name", "a/b"], "--experiment-name"),
    ],
)
def test_names_that_are_not_identifiers_exit_2_naming_the_option(
    tmp_path: Path, argv: list[str], option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "root"
    write_lesson(root, "L1", {"s1": (E, C, L)})
    # what a traversal would reach: a complete dataset/experiment outside the data root
    write_lesson(tmp_path, "L1", {"x": (E, C, L)}, dataset="x", experiment="x")
    before = _tree(tmp_path)
    assess = ScriptedAssess()
    gateway = Gateway(make_settings())
    env = Env(assess=assess, gateway=gateway, settings=gateway.settings)
    code = run(["--data-root", str(root), "--no-progress", *argv], env)
    err = capsys.readouterr().err
    assert code == 2
    assert f"argument {option}: " in err, err
    assert any(m in err for m in ("is not a name (", "is not a key prefix", "is not an S3 bucket name")), err
    assert assess.calls == []
    assert _tree(tmp_path) == before  # nothing written anywhere


def test_traversal_refused_through_the_script(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable, "lib/assessment/rubric_tester.py", "--data-root", str(tmp_path),
            "--dataset-name", "../../x", "--experiment-name", "exp",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "argument --dataset-name: '../../x' is not a name" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_bad_s3_settings_are_refused_before_any_s3_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(rubric_tester_s3_prefix="teaching_assistant/../../other")
    gateway = Gateway(settings)

    class NoS3:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"S3 was called ({name})")

    env = Env(assess=ScriptedAssess(), gateway=gateway, settings=settings, s3_client=NoS3())
    code = run(["--data-root", str(tmp_path), "--no-progress", *ARGS], env)
    assert code == 2
    assert "RUBRIC_TESTER_S3_PREFIX" in capsys.readouterr().err


def test_an_s3_lesson_folder_named_dotdot_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="cdo-ai")
        key = "teaching_assistant/experiments/exp/../params.json"
        client.put_object(Bucket="cdo-ai", Key=key, Body=b"{}")
        gateway = Gateway(make_settings())
        env = Env(assess=ScriptedAssess(), gateway=gateway, settings=gateway.settings, s3_client=client)
        code = run(["--data-root", str(tmp_path / "root"), "--no-progress", *ARGS], env)
    assert code == 2
    assert "lesson folder name(s) that are not names: '..'" in capsys.readouterr().err
    assert not (tmp_path / "params.json").exists() and not (tmp_path / "root").exists()


def test_export_refuses_an_id_that_is_a_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="is not a file name"):
        export_example(tmp_path / "out" / "L1", "../../x", "code", [], "json")
    assert not (tmp_path / "x.js").exists() and not (tmp_path / "out").exists()


def test_export_keeps_dataset_file_names_that_are_not_identifiers(tmp_path: Path) -> None:
    export_example(tmp_path / "L1", "student 7", "code", [], "tsv")
    assert sorted(p.name for p in (tmp_path / "L1").iterdir()) == ["student 7.js", "student 7.tsv"]
    for bad in ("..", ".", "a/b", "a\\b", ""):
        with pytest.raises(InvalidRequestError):
            export_example(tmp_path / "L1", bad, "code", [], "tsv")


def test_export_with_a_traversing_student_id_exits_2_and_writes_nothing(
    tmp_path: Path, run_tester, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    write_lesson(tmp_path, "L1", {"s1": (E, C, L)})
    dest = tmp_path / "ex" / "deep"
    argv = [*ARGS, "--student-ids", "../../s1", "--export-examples", str(dest)]
    assert run_tester(argv, ScriptedAssess()) == 2
    assert "argument --student-ids: '../../s1' is not a name (letters, digits" in capsys.readouterr().err
    assert not (tmp_path / "ex").exists() and not (tmp_path / "s1.js").exists()


# --- console ---------------------------------------------------------------------------------------


def test_console_names_failed_students_counts_students_and_skips_blank(
    tmp_path: Path, run_tester, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    labels = {f"s{i}": (E, C, L) for i in (1, 2, 10, 3)}
    write_lesson(tmp_path, "L1", labels)
    fails = {"s10": UpstreamUnavailableError("upstream down"), "s2": AuthenticationError("bad key")}
    assess = ScriptedAssess(fail_for=fails)
    assert run_tester(ARGS, assess) == 0
    out = capsys.readouterr().out
    assert "L1: exact" in out and "2 of 4 students failed" in out
    # one unit, students: called (failed ones included) + cached + answered without a call = 4
    assert "4 students: 4 called the model, 0 cached, 2 failed" in out
    failed = out.split("Failed (2 students, excluded from accuracy):\n", 1)[1].split("\n")
    assert failed[0].startswith("  L1/s2: upstream_authentication: bad key")  # natural order: 2 before 10
    assert failed[1].startswith("  L1/s10: upstream_unavailable: upstream down")
    assert "Rerun the same command with -c to retry only the failed students" in out
    # and -c does exactly that: only s2 and s10 are assessed again
    again = ScriptedAssess()
    assert run_tester([*ARGS, "-c"], again) == 0
    assert sorted(r.code.split("student ")[1].split("\n")[0] for r in again.calls) == ["s10", "s2"]
    out = capsys.readouterr().out
    assert "4 students: 2 called the model, 2 cached, 0 failed" in out and "Failed (" not in out


def test_blank_programs_are_not_counted_as_called(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real pipeline answers a blank program itself: counted apart, not as a model call."""
    from lib.assessment.pipeline import run_assessment

    write_lesson(tmp_path, "L1", {"s1": (N, N, N), "s2": (N, N, N)}, codes={"s1": "  \n\n"})
    calls: list[str] = []

    def assess(request: Any) -> Any:
        if request.code.strip():
            calls.append(request.code)
            return ScriptedAssess()(request)
        return run_assessment(gateway, request)

    gateway = Gateway(make_settings())
    env = Env(assess=assess, gateway=gateway, settings=gateway.settings)
    assert run(["--data-root", str(tmp_path), "--no-progress", *ARGS], env) == 0
    out = capsys.readouterr().out
    assert len(calls) == 1
    assert "2 students: 1 called the model, 1 answered without a model call" in out
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["totals"]["called"] == 1 and summary["totals"]["no_model_call"] == 1
    html = (tmp_path / "experiments/exp/output/report.html").read_text()
    assert "2 (1 called the model, 1 answered without a model call, 0 from cache; 0 failed)" in html


def test_no_progress_bar_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    env = {**os.environ, "RUBRIC_TESTER_NO_PROGRESS": ""}
    proc = subprocess.run(
        [
            sys.executable, "lib/assessment/rubric_tester.py", "--data-root", str(tmp_path),
            "--dataset-name", "sample",
        ],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stderr and "student/s" not in proc.stderr and "it/s" not in proc.stderr
    assert "Overall:" in proc.stdout


# --- --new-labels ---------------------------------------------------------------------------------


def test_new_labels_writes_the_ai_labels_in_actual_labels_format(
    tmp_path: Path, run_tester, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    write_lesson(tmp_path, "L1", {"s10": (E, E, E), "s2": (N, N, N), "s3": (C, C, C)})
    answers = {"s10": dict(zip(KCS, (C, L, N), strict=True)), "s2": dict(zip(KCS, (E, E, L), strict=True))}
    assess = ScriptedAssess(answers=answers, fail_for={"s3": UpstreamUnavailableError("down")})
    assert run_tester([*ARGS, "--new-labels"], assess) == 0
    path = tmp_path / "experiments/exp/output/L1/new_labels.csv"
    assert f"wrote {path} (2 students; 1 failed and left out)" in capsys.readouterr().out
    rows = list(csv.reader(path.open()))
    assert rows == [["student", *KCS], ["s2", E, E, L], ["s10", C, L, N]]
    # it is a valid labels file: a dataset built from it runs
    ds = tmp_path / "datasets/ai/L1"
    ds.mkdir(parents=True)
    (ds / "actual_labels.csv").write_text(path.read_text())
    for sid in ("s2", "s10"):
        (ds / f"{sid}.js").write_text((tmp_path / f"datasets/ds/L1/{sid}.js").read_text())
    assert run_tester(["--dataset-name", "ai", "--experiment-name", "exp", "-c"], ScriptedAssess()) == 0


def test_prefer_actual_labels_is_the_old_meaning(
    tmp_path: Path, run_tester, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    ds, _ = write_lesson(tmp_path, "L1", {"s1": (E, E, E)})
    header = "student," + ",".join(f'"{k}"' for k in KCS)
    (ds / "expected_grades.csv").write_text(header + "\ns1,No Evidence,No Evidence,No Evidence\n")
    assert run_tester([*ARGS, "--prefer-actual-labels"], ScriptedAssess(default=E)) == 0
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["statistics"]["overall"]["exact"]["rate"] == 1.0  # human labels: actual_labels.csv
    assert run_tester(ARGS, ScriptedAssess(default=E)) == 0
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["statistics"]["overall"]["exact"]["rate"] == 0.0  # legacy file wins by default
    # someone using --new-labels in its old meaning is told which file was read
    capsys.readouterr()
    assert run_tester([*ARGS, "--new-labels"], ScriptedAssess(default=E)) == 0
    assert "--prefer-actual-labels reads actual_labels.csv instead" in capsys.readouterr().out


# --- report ----------------------------------------------------------------------------------------


def test_report_keeps_prompt_and_rubric_orders_naturally_and_says_who_is_who(
    tmp_path: Path, run_tester
) -> None:  # type: ignore[no-untyped-def]
    prompt = "Grade it. <b>not markup</b> & keep going"
    write_lesson(tmp_path, "L1", {"s10": (L, L, L), "s2": (L, L, L), "s1": (L, L, L)}, prompt=prompt)
    assert run_tester(ARGS, ScriptedAssess(default=N)) == 0
    html = (tmp_path / "experiments/exp/output/report.html").read_text()
    assert 'id="inputs"' in html and "System prompt" in html
    assert "Grade it. &lt;b&gt;not markup&lt;/b&gt; &amp; keep going" in html
    assert "<th>Key Concept</th>" in html and "<td>Sprites</td>" in html and "<td>lots</td>" in html
    # the report opens with them, as Code.org's did: before the run parameters and every result
    assert html.index("System prompt") < html.index('id="params"') < html.index('id="confusion"')
    order = [html.index(f"L1 / {sid}\n") for sid in ("s1", "s2", "s10")]
    assert order == sorted(order)
    assert "human Limited → AI No" in html
    assert "human label → AI label" in html
