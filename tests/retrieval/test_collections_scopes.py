"""Scopes on the collections routes with real virtual keys: writes need admin, queries need chat."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from src.accounts import ACCOUNTS_EXTENSION
from tests.conftest import API_KEY, make_settings
from tests.support.openai_mock import OpenAIMock

ROOT = {"Authorization": API_KEY}


@pytest.fixture
def app(openai_mock: OpenAIMock, tmp_path: Path, app_factory: Callable[..., Flask]) -> Flask:
    settings = make_settings(
        openai_api_key="sk-test",
        openai_base_url=openai_mock.base_url,
        data_dir=tmp_path,
        key_hash_secret="retrieval-scope-secret-0123456789",
        default_embedding_model="text-embedding-3-small",
    )
    return app_factory(settings)


def _key(client: FlaskClient, *scopes: str) -> dict[str, str]:
    r = client.post("/admin/keys", json={"name": "k", "scopes": list(scopes)}, headers=ROOT)
    assert r.status_code == 201, r.json
    return {"Authorization": f"Bearer {r.json['key']}"}


def test_chat_key_queries_admin_key_writes(client: FlaskClient) -> None:
    chat, admin = _key(client, "chat"), _key(client, "admin")
    assert client.post("/collections", json={"name": "notes"}, headers=chat).status_code == 403
    assert client.post("/collections", json={"name": "notes"}, headers=admin).status_code == 201
    doc = {"id": "d1", "text": "The counter pattern adds one every frame."}
    assert client.post("/collections/notes/documents", json=doc, headers=chat).status_code == 403
    assert client.post("/collections/notes/documents", json=doc, headers=admin).status_code == 200
    r = client.post(
        "/collections/notes/query", json={"query": "The counter pattern adds one every frame."}, headers=chat
    )
    assert r.status_code == 200 and r.json["data"][0]["document_id"] == "d1"
    assert client.post("/collections/notes/query", json={"query": "x"}, headers=admin).status_code == 403
    assert client.delete("/collections/notes/documents/d1", headers=chat).status_code == 403
    assert client.delete("/collections/notes", headers=chat).status_code == 403
    assert client.delete("/collections/notes", headers=admin).status_code == 200


def test_database_down_is_503_on_collections_and_grounded_chat(
    tmp_path: Path, app_factory: Callable[..., Flask]
) -> None:
    from tests.store.test_keys import UNREACHABLE

    app = app_factory(make_settings(data_dir=tmp_path, database_url=UNREACHABLE))
    client = app.test_client()
    chat = {"messages": [{"role": "user", "content": "hi"}], "retrieval": {"collection": "notes"}}
    form = {"code": "x = 1;", "prompt": "p", "rubric": "Key Concept,A\nk,a\n", "examples-collection": "notes"}
    answers = [
        client.post("/collections", json={"name": "notes", "model": "local"}, headers=ROOT),
        client.post("/collections/notes/query", json={"query": "x"}, headers=ROOT),
        client.delete("/collections/notes", headers=ROOT),
        client.post("/chat", json=chat, headers=ROOT),
        client.post("/assessment", data=form, headers=ROOT),
    ]
    for r in answers:
        assert r.status_code == 503 and r.json["kind"] == "database_unavailable", r.json
        assert r.headers["Retry-After"] == "5"
    app.extensions[ACCOUNTS_EXTENSION].close()  # stop the start-up migration retries
