"""Few-shot examples chosen by similarity (``examples-collection`` on /assessment), real MiniLM embeddings."""

from __future__ import annotations

from flask.testing import FlaskClient

from lib.retrieval.examples import nearest_examples
from src.routes.collections import retrieval
from tests.assessment.conftest import read
from tests.retrieval.conftest import Embedder
from tests.support.openai_mock import CHAT, OpenAIMock, completion

DRAWING = "// a drawing\nbackground('blue');\nfill('yellow');\nellipse(200, 200, 100, 100);\n"
LOOP = "var count = 0;\nfunction draw() {\n  count = count + 1;\n  text(count, 200, 200);\n}\n"


def _graded(client: FlaskClient, auth: dict[str, str], name: str) -> None:
    assert (
        client.post(
            "/collections",
            json={"name": name, "model": "local", "chunk_tokens": 64, "chunk_overlap": 8},
            headers=auth,
        ).status_code
        == 201
    )
    answer = read("example.tsv")
    for doc_id, code in (("sprites", read("example.js")), ("drawing", DRAWING), ("counter", LOOP)):
        r = client.post(
            f"/collections/{name}/documents",
            json={"id": doc_id, "text": code, "metadata": {"response": answer}},
            headers=auth,
        )
        assert r.status_code == 200, r.json


def test_nearest_graded_examples_go_into_the_prompt(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock, minilm: Embedder
) -> None:
    _graded(client, auth, "graded-u3l13")
    # not the graded program itself: other names and numbers, and a comment that tries to steer the choice
    student = "// a drawing: background fill ellipse\n" + read("u3l13_01.js").replace("santa", "elf").replace(
        "200", "150"
    )
    assert student != read("example.js")
    with client.application.app_context():
        picked = nearest_examples(retrieval(), "graded-u3l13", student, 2, minilm)
    assert picked[0] == (
        read("example.js"),
        read("example.tsv"),
    )  # the whole program, stitched from its chunks
    assert len(picked) == 2 and len({code for code, _ in picked}) == 2

    openai_mock.script(CHAT, completion([read("example.tsv")]))
    form = {
        "code": student,
        "prompt": read("u3l13.txt"),
        "rubric": read("u3l13.csv"),
        "model": "gpt-4o-mini",
        "examples-collection": "graded-u3l13",
        "examples-count": "1",
    }
    r = client.post("/assessment", data=form, headers=auth)
    assert r.status_code == 200, r.json
    sent = openai_mock.calls(CHAT)[-1].json["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert "santa" in sent[1]["content"] and "santa" not in sent[3]["content"]  # example.js, then the student


def test_examples_collection_errors_name_the_field(client: FlaskClient, auth: dict[str, str]) -> None:
    form = {"code": "x = 1;", "prompt": "p", "rubric": read("u3l13.csv"), "model": "gpt-4o-mini"}
    r = client.post("/assessment", data={**form, "examples-collection": "missing"}, headers=auth)
    assert r.status_code == 400 and r.json["field"] == "examples-collection"
    r = client.post(
        "/assessment", data={**form, "examples-collection": "missing", "examples-count": "many"}, headers=auth
    )
    assert r.status_code == 400 and r.json["field"] == "examples-count"
    assert client.post("/collections", json={"name": "graded-empty"}, headers=auth).status_code == 201
    r = client.post(
        "/assessment",
        data={**form, "examples-collection": "graded-empty", "examples-count": "11"},
        headers=auth,
    )
    assert r.status_code == 400 and r.json["field"] == "examples-count"
