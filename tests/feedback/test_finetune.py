"""aiproxy-admin dataset export-finetune: the pipeline's exact messages plus the teacher-corrected
answer, validated per provider format, deterministic split, token counts and the registry's price."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lib.assessment.tester.estimate import count_tokens
from lib.errors import InvalidRequestError
from lib.feedback.finetune import (
    FineTuneFormatError,
    export_finetune,
    is_validation,
    validate_line,
)
from tests.feedback.conftest import (
    KCS,
    POSITION,
    PROGRAMS,
    SEQ,
    SPRITES,
    C,
    E,
    L,
    N,
    assess,
    engine_of,
)
from tests.feedback.test_cli import cli_env, run  # noqa: F401 - the CLI fixture and runner
from tests.feedback.test_dataset import label_all, make_records
from tests.support.openai_mock import CHAT, OpenAIMock, completion


def model_answer(labels: tuple[str, str, str]) -> str:
    return json.dumps(
        {
            "assessment": {
                kc: {"Observations": f"saw {i}", "Evidence": f"Line {i + 1}", "Reason": f"r{i}", "Grade": lab}
                for i, (kc, lab) in enumerate(zip(KCS, labels, strict=True))
            }
        }
    )


def test_rows_are_the_pipelines_messages_plus_the_teachers_answer(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    with OpenAIMock() as mock:
        app = make_app(openai_api_key="sk-test", openai_base_url=mock.base_url)
        client = app.test_client()
        mock.script(CHAT, completion([model_answer((E, C, N))]))
        # an empty code-feature-extractor is "not sent": the model decides every key concept
        reply = assess(client, PROGRAMS["sprite"], **{"code-feature-extractor": ""})
        assessment_id = reply["metadata"]["assessment_id"]
        (sent,) = mock.calls(CHAT)
    label_all(client, assessment_id, {SEQ: E, SPRITES: L, POSITION: N})
    result = export_finetune(engine_of(app), fmt="openai", out=tmp_path, validation_percent=0)
    assert (result.train, result.validation) == (1, 0)
    (line,) = [json.loads(x) for x in (tmp_path / "train.jsonl").read_text().splitlines()]
    *prompt, target = line["messages"]
    assert prompt == [{"role": m["role"], "content": m["content"]} for m in sent.json["messages"]]
    assert target["role"] == "assistant"
    answer = json.loads(target["content"])["assessment"]
    assert [answer[kc]["Grade"] for kc in KCS] == [E, L, N]
    assert answer[SEQ] == {"Observations": "saw 0", "Evidence": "Line 1", "Reason": "r0", "Grade": E}
    assert (
        answer[SPRITES]["Reason"] == f"Teacher's decision: {L}." and answer[SPRITES]["Evidence"] == "Line 2"
    )
    assert result.train_tokens == sum(count_tokens(m["content"]) for m in line["messages"])
    assert result.base_model == "gpt-4o-mini"
    assert result.cost_usd == pytest.approx(result.train_tokens * 3 * 3.00 / 1_000_000)
    assert (tmp_path / "validation.jsonl").read_text() == ""


@pytest.mark.parametrize("fmt", ["openai", "bedrock-claude", "bedrock-nova"])
def test_cli_export_per_format(
    fmt: str,
    cli_env: None,  # noqa: F811
    make_app: Callable[..., Flask],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _app, ids = make_records(make_app)  # eligible: "full" and "sprite" (see test_dataset)
    out = tmp_path / fmt
    code, stdout, err = run(
        capsys, "dataset", "export-finetune", "--format", fmt, "--out", str(out), "--validation-percent", "50"
    )
    assert code == 0, err
    expected = {"train": [], "validation": []}
    for name in ("full", "sprite"):
        expected["validation" if is_validation(ids[name], 50) else "train"].append(ids[name])
    for split in ("train", "validation"):
        lines = [json.loads(x) for x in (out / f"{split}.jsonl").read_text().splitlines()]
        assert len(lines) == len(expected[split])
        for line in lines:
            validate_line(fmt, line)
            assert "Jane" not in json.dumps(line)  # names stripped from the comments
    assert "estimated training cost on" in stdout and "$" in stdout
    assert "duplicates 1" in stdout and "blank 1" in stdout and "not_fully_labelled 1" in stdout
    # deterministic: the same rows again give byte-identical files
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert (
        run(
            capsys,
            "dataset",
            "export-finetune",
            "--format",
            fmt,
            "--out",
            str(out),
            "--validation-percent",
            "50",
        )[0]
        == 0
    )
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_never_a_row_without_stored_code(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(store_student_code=False)
    client = app.test_client()
    assessment_id = assess(client, PROGRAMS["full"])["metadata"]["assessment_id"]
    label_all(client, assessment_id, {SEQ: E, SPRITES: E, POSITION: L})
    with pytest.raises(InvalidRequestError, match="no record to export"):
        export_finetune(engine_of(app), fmt="bedrock-nova", out=tmp_path)
    with pytest.raises(InvalidRequestError, match="format"):
        export_finetune(engine_of(app), fmt="gemini", out=tmp_path)


GOOD: dict[str, dict[str, Any]] = {
    "openai": {
        "messages": [
            {"role": "system", "content": "s"},
            {"role": "user", "content": "u"},
            {"role": "assistant", "content": "a"},
        ]
    },
    "bedrock-claude": {
        "system": "s",
        "messages": [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}],
    },
    "bedrock-nova": {
        "schemaVersion": "bedrock-conversation-2024",
        "system": [{"text": "s"}],
        "messages": [
            {"role": "user", "content": [{"text": "u"}]},
            {"role": "assistant", "content": [{"text": "a"}]},
        ],
    },
}


@pytest.mark.parametrize(
    ("fmt", "broken"),
    [
        ("openai", {"messages": [{"role": "user", "content": "u"}]}),
        ("openai", {"messages": [{"role": "tool", "content": "u"}, {"role": "assistant", "content": "a"}]}),
        ("openai", {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "a"}]}),
        ("openai", {"prompt": "x", "completion": "y"}),
        ("bedrock-claude", {"system": "s", "messages": [{"role": "assistant", "content": "a"}]}),
        ("bedrock-claude", {"system": "s", "messages": [{"role": "user", "content": "u"}]}),
        ("bedrock-claude", {"system": 1, "messages": []}),
        (
            "bedrock-claude",
            {"messages": [{"role": "user", "content": "u", "x": 1}, {"role": "assistant", "content": "a"}]},
        ),
        ("bedrock-nova", {**GOOD["bedrock-nova"], "schemaVersion": "v1"}),
        ("bedrock-nova", {**GOOD["bedrock-nova"], "system": "s"}),
        (
            "bedrock-nova",
            {
                **GOOD["bedrock-nova"],
                "messages": [
                    {"role": "user", "content": "u"},
                    {"role": "assistant", "content": [{"text": "a"}]},
                ],
            },
        ),
    ],
)
def test_validation_refuses_other_shapes(fmt: str, broken: dict[str, Any]) -> None:
    validate_line(fmt, GOOD[fmt])
    with pytest.raises(FineTuneFormatError):
        validate_line(fmt, broken)


def test_split_is_a_stable_function_of_the_id() -> None:
    ids = [f"{i:032x}" for i in range(400)]
    share = sum(is_validation(i, 10) for i in ids) / len(ids)
    assert 0.05 < share < 0.15
    assert [is_validation(i, 10) for i in ids] == [is_validation(i, 10) for i in ids]
    assert not any(is_validation(i, 0) for i in ids)
