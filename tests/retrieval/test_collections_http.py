"""The collections API through the app (real MiniLM embeddings via the gateway, SQLite store)."""

from __future__ import annotations

from flask.testing import FlaskClient

from src.scopes import route_scope
from tests.retrieval.conftest import Embedder, corpus


def _lessons(client: FlaskClient, auth: dict[str, str], name: str = "lessons") -> None:
    made = client.post("/collections", json={"name": name, "model": "local"}, headers=auth)
    assert made.status_code == 201, made.json
    for doc_id, text, meta in corpus():
        r = client.post(
            f"/collections/{name}/documents",
            json={"id": doc_id, "text": text, "metadata": meta},
            headers=auth,
        )
        assert r.status_code == 200, r.json


def test_create_ingest_query_delete(client: FlaskClient, auth: dict[str, str], minilm: Embedder) -> None:
    _lessons(client, auth)
    again = client.post("/collections", json={"name": "lessons", "model": "local"}, headers=auth)
    assert again.status_code == 200 and again.json["created"] is False and again.json["dimensions"] == 384
    other = client.post(
        "/collections", json={"name": "lessons", "model": "local", "chunk_tokens": 50}, headers=auth
    )
    assert other.status_code == 409 and other.json["field"] == "name"

    question = {"query": "Which sprites have properties updated inside the draw loop?", "k": 3}
    r = client.post(
        "/collections/lessons/query", json={**question, "filter": {"lesson": "u3l13"}}, headers=auth
    )
    assert r.status_code == 200, r.json
    top = r.json["data"][0]
    assert top["document_id"] == "u3l13/Modularity - Sprites and Sprite Properties"
    texts = {d: t for d, t, _ in corpus()}
    assert texts[top["document_id"]][top["start"] : top["end"]] == top["text"]
    assert r.json["model"] == "local" and len(r.json["data"]) == 3

    doc = corpus()[0]
    same = client.post(
        "/collections/lessons/documents",
        json={"id": doc[0], "text": doc[1], "metadata": doc[2]},
        headers=auth,
    )
    assert same.json["unchanged"] is True and same.json["embedded"] == 0

    gone = client.delete(f"/collections/lessons/documents/{top['document_id']}", headers=auth)
    assert gone.status_code == 200
    r = client.post("/collections/lessons/query", json={**question, "k": 50}, headers=auth)
    assert top["document_id"] not in {h["document_id"] for h in r.json["data"]}
    assert (
        client.delete(f"/collections/lessons/documents/{top['document_id']}", headers=auth).status_code == 404
    )

    assert client.delete("/collections/lessons", headers=auth).status_code == 200
    assert client.post("/collections/lessons/query", json=question, headers=auth).status_code == 404
    assert client.delete("/collections/lessons", headers=auth).status_code == 404


def test_bad_input_names_the_field(client: FlaskClient, auth: dict[str, str]) -> None:
    cases = [
        ("/collections", {"name": "has space"}, "name"),
        ("/collections", {"name": "ok", "chunk_tokens": 20, "chunk_overlap": 20}, "chunk_overlap"),
        ("/collections", {"name": "ok", "shape": 1}, "shape"),
        ("/collections", {"name": "ok", "model": "no-such-model"}, "model"),
    ]
    for path, body, field in cases:
        r = client.post(path, json=body, headers=auth)
        assert r.status_code == 400 and r.json["field"] == field, (body, r.json)
    assert client.post("/collections", json={"name": "f"}, headers=auth).status_code == 201
    r = client.post("/collections/f/query", json={"query": "x", "filter": {"a": {"b": 1}}}, headers=auth)
    assert r.status_code == 400 and r.json["field"].startswith("filter")
    r = client.post("/collections/f/query", json={"query": "x", "k": 0}, headers=auth)
    assert r.status_code == 400 and r.json["field"] == "k"
    r = client.post("/collections/f/documents", json={"id": "d", "text": "a\u0000b"}, headers=auth)
    assert r.status_code == 400 and r.json["field"] == "text"
    r = client.post("/collections/missing/documents", json={"id": "d", "text": "x"}, headers=auth)
    assert r.status_code == 404


def test_default_model_is_the_configured_embedding_model(client: FlaskClient, auth: dict[str, str]) -> None:
    """With an OpenAI key configured (as here) that is OpenAI's model; offline it is ``local``."""
    r = client.post("/collections", json={"name": "defaulted"}, headers=auth)
    assert r.status_code == 201 and r.json["model"] == "text-embedding-3-small"
    r = client.post("/collections/defaulted/documents", json={"id": "a", "text": "sprites"}, headers=auth)
    assert r.status_code == 200 and r.json["embedded"] == 1  # through the OpenAI stand-in
    r = client.post("/collections/defaulted/query", json={"query": "sprites", "k": 1}, headers=auth)
    assert r.json["data"][0]["document_id"] == "a" and r.json["data"][0]["score"] > 0.99
    assert client.delete("/collections/defaulted", headers=auth).status_code == 200


def test_scopes_writes_admin_queries_chat() -> None:
    assert route_scope("/collections") == "admin"
    assert route_scope("/collections/x/documents") == "admin"
    assert route_scope("/collections/x/documents/query") == "admin"  # deleting a document named "query"
    assert route_scope("/collections/x/query") == "chat"
