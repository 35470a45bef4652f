from __future__ import annotations

import json
from pathlib import Path

import pytest

from lib.assessment.tester.data import DataError, Locator, load_lesson, rubric_key_concepts
from lib.assessment.tester.params import ParamsError, apply_overrides, parse_key_concept_list, parse_params
from tests.tester.conftest import KCS, C, E, L, N, ScriptedAssess, write_lesson


def test_params_accept_strings_and_release_shape() -> None:
    raw = json.loads(Path("tests/data/codeorg-aiproxy/cfe_params.json").read_text())
    p = parse_params(raw)
    assert p.model.startswith("bedrock.")
    assert (p.num_responses, p.temperature, p.remove_comments, p.response_type) == (3, 0.2, True, "json")
    assert p.code_feature_extractor == ("Position - Elements and the Coordinate System",)
    assert p.lesson == "csd3-2023-L11"
    assert p.deprecated_keys == ("num-passing-grades",)


def test_params_missing_and_unknown_keys_are_named() -> None:
    with pytest.raises(ParamsError) as exc:
        parse_params({"model": "gpt-4o", "temprature": 0.2, "colour": 1})
    msg = str(exc.value)
    assert "num-responses" in msg and "temperature" in msg
    assert "temprature" in msg and "colour" in msg


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"num-responses": "three"}, "num-responses"),
        ({"num-responses": "0"}, "num-responses"),
        ({"num-responses": 1.5}, "num-responses"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": "nan"}, "temperature"),
        ({"temperature": 3}, "temperature"),
        ({"response-type": "xml"}, "response-type"),
        ({"remove-comments": "maybe"}, "remove-comments"),
        ({"code-feature-extractor": "[not json"}, "code-feature-extractor"),
    ],
)
def test_params_bad_values(raw: dict[str, object], field: str) -> None:
    base: dict[str, object] = {"model": "gpt-4o", "num-responses": 1, "temperature": 0.2}
    with pytest.raises(ParamsError) as exc:
        parse_params({**base, **raw})
    assert exc.value.field == field


def test_cfe_list_forms() -> None:
    assert parse_key_concept_list("a, b") == ("a", "b")
    assert parse_key_concept_list('["a", "b"]') == ("a", "b")
    assert parse_key_concept_list(["a"]) == ("a",)
    assert parse_key_concept_list(None) == ()


def test_overrides_honour_zero_and_never_fall_back() -> None:
    p = parse_params({"model": "gpt-4o", "num-responses": "3", "temperature": "0.7", "remove-comments": "1"})
    q = apply_overrides(p, model=None, num_responses=None, temperature=0.0, remove_comments=False)
    assert q.temperature == 0.0  # -t 0 honoured (Code.org's `or` replaced it with 0.7)
    assert q.num_responses == 3 and q.remove_comments is True
    q = apply_overrides(p, model="local", num_responses=1, temperature=None, remove_comments=False)
    assert (q.model, q.num_responses, q.temperature) == ("local", 1, 0.7)
    with pytest.raises(ParamsError, match="num-responses must be >= 1"):
        apply_overrides(p, model=None, num_responses=0, temperature=None, remove_comments=False)


def test_rubric_key_concepts_tolerate_bom_and_smart_quotes() -> None:
    text = "\ufeff" + Path("tests/data/codeorg-aiproxy/u3l13.csv").read_text(encoding="utf-8")
    kcs = rubric_key_concepts(text, "u3l13.csv")
    assert kcs[-1] == "Optional “Stretch” Feature - Variables"
    assert len(kcs) == 3


def _load(ds: Path, ex: Path, **kw: object) -> object:
    args: dict[str, object] = {"max_num_students": 100, "student_ids": None, "prefer_actual_labels": False}
    args.update(kw)
    return load_lesson("L1", ds, ex, **args)  # type: ignore[arg-type]


def test_label_columns_must_match_rubric(tmp_path: Path) -> None:
    ds, ex = write_lesson(tmp_path, "L1", {"s1": (E, C, L)})
    (ex / "standard_rubric.csv").write_text(
        "Key Concept,Extensive Evidence,Convincing Evidence,Limited Evidence,No Evidence\n"
        "Sprites,a,b,c,d\nPosition,a,b,c,d\nLoops,a,b,c,d\n"
    )
    with pytest.raises(DataError) as exc:
        _load(ds, ex)
    msg = str(exc.value)
    assert "Loops" in msg and "Optional “Stretch” Feature - Variables" in msg


def test_every_selected_student_needs_valid_labels(tmp_path: Path) -> None:
    ds, ex = write_lesson(tmp_path, "L1", {"s1": (E, C, L), "s2": (E, "", L), "s3": (E, "Great", L)})
    (ds / "s4.js").write_text("// no labels")
    with pytest.raises(DataError) as exc:
        _load(ds, ex)
    msg = str(exc.value)
    assert "s2 has no label for 'Position'" in msg
    assert "s3 has invalid label 'Great'" in msg
    assert "s4 has no row" in msg
    # selecting only the good student is fine
    lesson = _load(ds, ex, student_ids=["s1"])
    assert [s.id for s in lesson.students] == ["s1"]  # type: ignore[attr-defined]
    with pytest.raises(DataError, match="student nope"):
        _load(ds, ex, student_ids=["nope"])


def test_max_students_and_legacy_labels(tmp_path: Path) -> None:
    ds, ex = write_lesson(tmp_path, "L1", {f"s{i}": (E, C, L) for i in range(5)})
    lesson = _load(ds, ex, max_num_students=2)
    assert [s.id for s in lesson.students] == ["s0", "s1"]  # type: ignore[attr-defined]
    (ds / "expected_grades.csv").write_text(
        "student," + ",".join(KCS) + "\n" + "\n".join(f"s{i},{N},{N},{N}" for i in range(5)) + "\n"
    )
    assert _load(ds, ex).labels["s0"][KCS[0]] == N  # type: ignore[attr-defined]
    assert _load(ds, ex, prefer_actual_labels=True).labels["s0"][KCS[0]] == E  # type: ignore[attr-defined]


def test_example_without_answer_file(tmp_path: Path) -> None:
    ds, ex = write_lesson(tmp_path, "L1", {"s1": (E, C, L)}, examples={"e1": ("code", "a\tb")})
    assert _load(ds, ex).examples == (("code", "a\tb"),)  # type: ignore[attr-defined]
    (ex / "examples" / "e1.tsv").rename(ex / "examples" / "e1.json")
    with pytest.raises(DataError, match=r"e1\.js has no e1\.tsv"):
        _load(ds, ex)


def test_cfe_must_name_rubric_key_concepts(tmp_path: Path) -> None:
    params = {
        "model": "gpt-4o",
        "num-responses": 1,
        "temperature": 0,
        "code-feature-extractor": "Sprites,Loops",
    }
    ds, ex = write_lesson(tmp_path, "L1", {"s1": (E, C, L)}, params=params)
    with pytest.raises(ParamsError, match="Loops"):
        _load(ds, ex)


def test_validation_errors_stop_before_any_call(tmp_path: Path, run_tester) -> None:  # type: ignore[no-untyped-def]
    write_lesson(tmp_path, "L1", {"s1": (E, C, L), "s2": (E, "Bogus", L)})
    assess = ScriptedAssess()
    assert run_tester(["--dataset-name", "ds", "--experiment-name", "exp"], assess) == 2
    assert assess.calls == []
    params = {"model": "gpt-4o", "num-responses": 1, "temperature": 0, "extra-key": 1}
    write_lesson(tmp_path, "L2", {"s1": (E, C, L)}, params=params)
    assert (
        run_tester(["--dataset-name", "ds", "--experiment-name", "exp", "--lesson-names", "L2"], assess) == 2
    )
    assert (
        run_tester(["--dataset-name", "ds", "--experiment-name", "exp", "--lesson-names", "L9"], assess) == 2
    )
    # an unroutable model is caught before any call too
    write_lesson(tmp_path, "L3", {"s1": (E, C, L)})
    argv = [
        "--dataset-name",
        "ds",
        "--experiment-name",
        "exp",
        "--lesson-names",
        "L3",
        "-l",
        "nonsense-model",
    ]
    assert run_tester(argv, assess) == 2
    assert assess.calls == []


def test_bundled_sample_is_found_and_never_written(tmp_path: Path) -> None:
    loc = Locator(tmp_path, None)
    folder = loc.folder("datasets/sample/csd3-2023-L11")
    assert folder.is_relative_to(Path("lib/assessment/tester/sample").resolve())
    assert loc.lessons("experiments/sample") == ["csd3-2023-L11"]
    assert loc.is_bundled("experiments/sample")
