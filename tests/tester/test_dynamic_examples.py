"""``--dynamic-examples K --examples-from SOURCE``: each student is assessed with fixed and with the
nearest graded examples, chosen by the real local MiniLM embedder, and both accuracies are reported.

The assess function answers with the labels of the first example it is given, so the dynamic run's
accuracy follows from which neighbour each student gets, and every figure below is computed by hand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from lib.assessment.parse import extract_rows
from lib.assessment.tester.cli import Env, run
from lib.assessment.tester.data import LessonData, Student, load_lesson
from lib.assessment.tester.dynamic import ExampleChooser, dataset_chooser
from lib.assessment.types import AssessmentRequest, AssessmentResult
from lib.providers.gateway import Gateway
from lib.retrieval.store import CollectionStore
from lib.store import Store
from tests.conftest import make_settings
from tests.local.conftest import needs_models
from tests.support.openai_mock import CHAT
from tests.tester.conftest import KCS, C, E, L, N, key_concepts_of, result_for, write_lesson
from tests.tester.mock_model import grading_mock
from tests.tester.test_cli_hardening import _tree

pytestmark = needs_models

SPRITES = (
    "// student {sid}\nvar ship = createSprite(200, {n});\nship.setAnimation('rocket');\n"
    "function draw() {{\n  ship.x = ship.x + 2;\n  ship.rotation = ship.rotation + 1;\n  drawSprites();\n}}\n"
)
LOOPS = (
    "// student {sid}\nvar total = 0;\nfor (var i = 0; i < {n}; i++) {{\n  total = total + i * i;\n}}\n"
    "console.log('sum of squares', total);\n"
)
TEXT = (
    "// student {sid}\nbackground('white');\nfill('blue');\ntextSize({n});\n"
    "text('Hello world, my name is Ada', 20, 40);\ntext('I like poems', 20, 80);\n"
)
#: twins: each student's nearest other program is its twin's
CODES = {
    "a1": SPRITES.format(sid="a1", n=100),
    "a2": SPRITES.format(sid="a2", n=120),
    "b1": LOOPS.format(sid="b1", n=10),
    "b2": LOOPS.format(sid="b2", n=12),
    "c1": TEXT.format(sid="c1", n=20),
    "c2": TEXT.format(sid="c2", n=24),
}
#: what identifies each program inside a prompt (the pipeline may number lines)
MARK = {
    "a1": "createSprite(200, 100)",
    "a2": "createSprite(200, 120)",
    "b1": "i < 10;",
    "b2": "i < 12;",
    "c1": "textSize(20)",
    "c2": "textSize(24)",
}
TWIN = {"a1": "a2", "a2": "a1", "b1": "b2", "b2": "b1", "c1": "c2", "c2": "c1"}
LABELS = {
    "a1": (E, E, N),
    "a2": (E, C, N),
    "b1": (L, N, E),
    "b2": (L, N, E),
    "c1": (N, L, C),
    "c2": (N, L, C),
}
FIXED = (
    "fixed",
    (
        SPRITES.format(sid="f0", n=7),
        "Key Concept\tLabel\n"
        + "".join(f"{kc}\t{label}\n" for kc, label in zip(KCS, (E, E, N), strict=True)),
    ),
)
ARGS = ["--dataset-name", "ds", "--experiment-name", "exp", "--no-progress"]


@dataclass
class FirstExampleAssess:
    """Answers each key concept with the first example's label (No Evidence without examples)."""

    calls: list[AssessmentRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: AssessmentRequest) -> AssessmentResult:
        with self.lock:
            self.calls.append(request)
        labels: dict[str, str] = {}
        if request.examples:
            rows, _ = extract_rows(request.examples[0][1])
            labels = {str(r["Key Concept"]): str(r["Label"]) for r in rows}
        return result_for(request, {kc: labels.get(kc, N) for kc in key_concepts_of(request.rubric)})


@pytest.fixture(scope="module")
def gateway() -> Gateway:
    return Gateway(make_settings())


def _run(root: Path, gateway: Gateway, argv: list[str], assess: Callable[..., AssessmentResult]) -> int:
    env = Env(assess=assess, gateway=gateway, settings=gateway.settings)
    return run(["--data-root", str(root), *ARGS, *argv], env)


def _rates(pairs: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> tuple[float, float]:
    """Exact and pass/fail agreement of (human, ai) label rows, by hand."""
    passing = {E, C}
    flat = [(h, a) for human, ai in pairs for h, a in zip(human, ai, strict=True)]
    exact = sum(h == a for h, a in flat) / len(flat)
    pass_fail = sum((h in passing) == (a in passing) for h, a in flat) / len(flat)
    return exact, pass_fail


def test_side_by_side_equals_hand_computed_stats_with_leave_one_out(
    tmp_path: Path, gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    write_lesson(tmp_path, "L1", LABELS, codes=CODES, examples={FIXED[0]: FIXED[1]})
    assess = FirstExampleAssess()
    assert _run(tmp_path, gateway, ["--dynamic-examples", "1"], assess) == 0
    out = capsys.readouterr().out

    # leave-one-out: each student's one dynamic example is its twin, never its own program
    dynamic = [r for r in assess.calls if r.examples[0][0] != FIXED[1][0]]
    assert len(dynamic) == 6 and len(assess.calls) == 12
    for request in dynamic:
        sid = request.code.split("student ", 1)[1].split("\n", 1)[0]
        assert request.examples[0][0] == CODES[TWIN[sid]]
        assert "No Evidence" in request.examples[0][1] or "Limited Evidence" in request.examples[0][1]

    fixed_exact, fixed_pf = _rates([(LABELS[s], (E, E, N)) for s in LABELS])
    dyn_exact, dyn_pf = _rates([(LABELS[s], LABELS[TWIN[s]]) for s in LABELS])
    assert (fixed_exact, fixed_pf) == (5 / 18, 6 / 18)
    assert (dyn_exact, dyn_pf) == (16 / 18, 18 / 18)  # without leave-one-out it would be 18/18 exact

    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    comparison = summary["dynamic_examples"]
    assert comparison["k"] == 1 and comparison["from"] == "ds" and comparison["leave_one_out"] is True
    overall = comparison["side_by_side"][0]
    assert overall["scope"] == "Overall"
    assert overall["fixed"]["exact"] == pytest.approx(fixed_exact)
    assert overall["fixed"]["pass_fail"] == pytest.approx(fixed_pf)
    assert overall["dynamic"]["exact"] == pytest.approx(dyn_exact)
    assert overall["dynamic"]["pass_fail"] == pytest.approx(dyn_pf)
    assert summary["statistics"]["overall"]["exact"]["rate"] == pytest.approx(fixed_exact)
    assert comparison["statistics"]["overall"]["exact"]["rate"] == pytest.approx(dyn_exact)
    # per key concept: "Position" is the one the a-twins disagree on
    position = next(r for r in comparison["side_by_side"] if r["scope"] == "Position")
    assert position["dynamic"]["exact"] == pytest.approx(4 / 6)
    assert comparison["examples"]["L1"] == {s: [TWIN[s]] for s in LABELS}
    assert comparison["assessments"] == 6 and comparison["errors"] == []

    assert "Examples: fixed vs the 1 nearest from ds (leave-one-out)" in out
    assert "Overall: exact 27.8% -> 88.9%, pass/fail 33.3% -> 100.0%" in out
    html = (tmp_path / "experiments/exp/output/report.html").read_text()
    assert "Fixed vs dynamic examples" in html and "88.9%" in html
    dyn_csv = (tmp_path / "experiments/exp/output/predictions_dynamic.csv").read_text()
    assert dyn_csv.count("\nL1,") == 18

    # the cache: 12 answers (fingerprints cover the examples); a rerun with -c calls nothing
    cached = list((tmp_path / "experiments/exp/output/L1/cached_responses").glob("*.json"))
    assert len(cached) == 12
    again = FirstExampleAssess()
    assert _run(tmp_path, gateway, ["--dynamic-examples", "1", "-c"], again) == 0
    assert again.calls == []
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["dynamic_examples"]["cached"] == 6
    assert summary["dynamic_examples"]["side_by_side"][0]["dynamic"]["exact"] == pytest.approx(dyn_exact)


def test_examples_from_another_dataset_are_not_left_out(tmp_path: Path, gateway: Gateway) -> None:
    write_lesson(tmp_path, "L1", LABELS, codes=CODES, examples={FIXED[0]: FIXED[1]})
    graded = {"a1": (C, C, C), "b9": (N, N, N)}
    write_lesson(
        tmp_path,
        "L1",
        graded,
        dataset="graded",
        experiment="unused",
        codes={"a1": CODES["a1"], "b9": LOOPS.format(sid="b9", n=7)},
    )
    assess = FirstExampleAssess()
    assert _run(tmp_path, gateway, ["--dynamic-examples", "1", "--examples-from", "graded"], assess) == 0
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    comparison = summary["dynamic_examples"]
    assert comparison["leave_one_out"] is False and comparison["from"] == "graded"
    # another dataset's a1 is not the student's own program: a1 gets it (same id, same code)
    assert comparison["examples"]["L1"]["a1"] == ["a1"] and comparison["examples"]["L1"]["b2"] == ["b9"]
    assert (tmp_path / "experiments/exp/output/dynamic_examples.db").is_file()


def test_examples_from_a_collection_of_the_service_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path / 'service.db'}")
    gateway = Gateway(settings)
    store = Store(settings.effective_database_url)
    store.migrate()
    collections = CollectionStore(store.engine)
    coll, _ = collections.create("graded", "local", 200, 40)

    def embed(model: str, texts: Sequence[str]) -> list[list[float]]:
        return list(gateway.embed(model, list(texts)).vectors)

    answer = "Key Concept\tLabel\n" + "".join(f"{kc}\t{C}\n" for kc in KCS)
    collections.upsert(coll, "teacher-1", LOOPS.format(sid="t", n=3), {"response": answer}, embed)
    collections.upsert(coll, "b1", CODES["b1"], {"response": answer.replace(C, N)}, embed)
    store.dispose()
    write_lesson(tmp_path, "L1", LABELS, codes=CODES)
    assess = FirstExampleAssess()
    env = Env(assess=assess, gateway=gateway, settings=settings)
    argv = [
        "--data-root",
        str(tmp_path),
        *ARGS,
        "--dynamic-examples",
        "2",
        "--examples-from",
        "collection:graded",
    ]
    assert run(argv, env) == 0
    chosen = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())["dynamic_examples"]
    assert chosen["examples"]["L1"]["b1"] == ["teacher-1"]  # its own document (same id) is left out
    assert sorted(chosen["examples"]["L1"]["b2"]) == ["b1", "teacher-1"]

    argv[-1] = "collection:nothing"
    assert run(argv, env) == 2
    assert "--examples-from: no collection named 'nothing'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--dynamic-examples", "1", "--examples-from", "../ds"],
            "argument --examples-from: '../ds' is not a",
        ),
        (["--dynamic-examples", "1", "--examples-from", "/etc"], "argument --examples-from: '/etc' is not a"),
        (["--dynamic-examples", "1", "--examples-from", "collection:a/b"], "a collection name is"),
        (["--examples-from", "ds"], "argument --examples-from: needs --dynamic-examples K"),
        (["--dynamic-examples", "0"], "argument --dynamic-examples: must be 1..10"),
        (["--dynamic-examples", "11"], "argument --dynamic-examples: must be 1..10"),
    ],
)
def test_refused_sources_and_counts_exit_2_naming_the_option(
    tmp_path: Path, gateway: Gateway, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    write_lesson(tmp_path, "L1", LABELS, codes=CODES)
    before = _tree(tmp_path)
    assess = FirstExampleAssess()
    assert _run(tmp_path, gateway, extra, assess) == 2
    assert message in capsys.readouterr().err
    assert assess.calls == [] and _tree(tmp_path) == before


def test_dry_run_with_dynamic_examples_embeds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_lesson(tmp_path, "L1", LABELS, codes=CODES)
    gateway = Gateway(make_settings(), factories={})  # no provider, so no embedding, can be made
    assess = FirstExampleAssess()
    assert _run(tmp_path, gateway, ["--dynamic-examples", "2", "--dry-run"], assess) == 0
    assert "--dynamic-examples 2: each student is assessed a second time" in capsys.readouterr().out
    assert assess.calls == [] and not (tmp_path / "experiments/exp/output/dynamic_examples.db").exists()


def test_a_rerun_embeds_only_what_changed_and_drops_removed_students(
    tmp_path: Path, gateway: Gateway
) -> None:
    ds, ex = write_lesson(tmp_path, "L1", LABELS, codes=CODES)
    pool = load_lesson("L1", ds, ex, max_num_students=100, student_ids=None)
    embedded: list[str] = []

    def embed(model: str, texts: Sequence[str]) -> list[list[float]]:
        embedded.extend(texts)
        return list(gateway.embed("local", list(texts)).vectors)  # every "model" is MiniLM here

    def ingest(lesson: LessonData, model: str) -> ExampleChooser:
        chooser = dataset_chooser(tmp_path / "out", embed, 1, "ds", leave_one_out=True)
        chooser.ingest(lesson, model)
        return chooser

    ingest(pool, "local").close()
    documents = len(embedded)
    assert documents == 6
    chooser = ingest(replace(pool, students=pool.students[:4]), "local")  # c1 and c2 left the dataset
    assert len(embedded) == documents  # nothing embedded again
    assert chooser.choose("L1", Student("c1", CODES["c1"]))[0][0] != "c2"  # one query embedded
    chooser.close()
    chooser = ingest(pool, "local-2")  # another embedding model: every program again
    assert len(embedded) == documents + 1 + 6
    assert chooser.choose("L1", Student("c1", CODES["c1"]))[0][0] == "c2"
    chooser.close()


def test_real_pipeline_sends_the_twin_as_the_example_to_the_loopback_model(tmp_path: Path) -> None:
    """The chosen examples reach the model: through the real pipeline, gateway and openai SDK."""
    write_lesson(tmp_path, "L1", LABELS, codes=CODES, examples={FIXED[0]: FIXED[1]})
    with grading_mock(KCS) as mock:
        settings = make_settings(
            openai_api_key="sk-loopback", openai_base_url=mock.base_url, default_embedding_model="local"
        )
        env = Env(gateway=Gateway(settings), settings=settings)
        argv = ["--data-root", str(tmp_path), *ARGS, "--dynamic-examples", "1"]
        assert run(argv, env) == 0
        bodies = [r.json for r in mock.calls(CHAT)]
    assert len(bodies) == 12
    seen: dict[str, list[str]] = {}
    for body in bodies:
        texts = [str(m.get("content", "")) for m in body["messages"]]
        sid = texts[-1].split("// student ", 1)[1].split("\n", 1)[0]
        before = "\n".join(texts[:-1])  # everything but the student's own program
        assert MARK[sid] not in before
        seen.setdefault(sid, []).append("fixed" if "createSprite(200, 7)" in before else "dynamic")
        if "createSprite(200, 7)" not in before:
            assert MARK[TWIN[sid]] in before
    assert {sid: sorted(kinds) for sid, kinds in seen.items()} == {s: ["dynamic", "fixed"] for s in LABELS}
    summary = json.loads((tmp_path / "experiments/exp/output/summary.json").read_text())
    assert summary["dynamic_examples"]["errors"] == [] and summary["errors"] == []
