"""The image routes in process (Flask test client, real providers against the loopback stand-ins):
response shapes of ``/v1/images/generations`` and ``/images``, and their refusals."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from src.accounts import ACCOUNTS_EXTENSION
from tests.conftest import API_KEY, make_settings
from tests.support import bedrock_mock as bm
from tests.support import image_upstreams as iu
from tests.support.openai_mock import OpenAIMock

AUTH = {"Authorization": API_KEY}


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Flask]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from src.app import create_app

    with bm.BedrockMock() as bedrock, OpenAIMock() as oai:
        bedrock.on(bm.INVOKE, iu.bedrock_invoke)
        oai.on(iu.IMAGES, iu.openai_images)
        settings = make_settings(
            openai_api_key="sk-x",
            openai_base_url=oai.base_url,
            aws_endpoint_url_bedrock_runtime=bedrock.endpoint_url,
            max_retries=0,
            data_dir=tmp_path,
            key_hash_secret="images-test-secret-0123456789abcdef",
        )
        yield create_app(settings)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_v1_answer_shapes(client: FlaskClient) -> None:
    dalle = client.post("/v1/images/generations", json={"model": "dall-e-3", "prompt": "a fox"}, headers=AUTH)
    assert dalle.status_code == 200, dalle.text
    body = dalle.json
    assert body is not None and set(body) == {"created", "data"}
    assert body["data"][0]["revised_prompt"] == "A detailed picture: a fox"
    assert base64.b64decode(body["data"][0]["b64_json"]).startswith(b"\x89PNG")
    gpt = client.post(
        "/v1/images/generations", json={"model": "gpt-image-1", "prompt": "a fox", "n": 2}, headers=AUTH
    )
    assert gpt.json is not None and len(gpt.json["data"]) == 2
    assert gpt.json["usage"] == {"input_tokens": 12, "output_tokens": 544, "total_tokens": 556}
    assert "revised_prompt" not in gpt.json["data"][0]


def test_v1_refusals_name_the_field(client: FlaskClient) -> None:
    url = client.post(
        "/v1/images/generations",
        json={"model": "dall-e-3", "prompt": "a fox", "response_format": "url"},
        headers=AUTH,
    )
    assert url.status_code == 400 and url.json is not None
    assert url.json["error"]["param"] == "response_format"
    extra = client.post(
        "/v1/images/generations", json={"model": "dall-e-3", "prompt": "a fox", "user": "u1"}, headers=AUTH
    )
    assert extra.status_code == 400 and extra.json is not None and extra.json["error"]["param"] == "user"
    blocked = client.post(
        "/v1/images/generations", json={"model": "dall-e-3", "prompt": iu.BLOCKED_WORD}, headers=AUTH
    )
    assert blocked.status_code == 400 and blocked.json is not None
    assert (
        blocked.json["error"]["code"] == "content_policy"
        and "safety system" in blocked.json["error"]["message"]
    )


def test_native_images(client: FlaskClient) -> None:
    body = {"model": "bedrock.stability.stable-diffusion-xl-v1", "prompt": "a fox", "seed": 4}
    resp = client.post("/images", json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    out = resp.json
    assert (
        out is not None
        and out["provider"] == "bedrock"
        and out["model"] == "stability.stable-diffusion-xl-v1"
    )
    assert out["images"][0]["seed"] == 4 and out["images"][0]["index"] == 0
    assert out["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0, "images": 1}
    blocked = client.post("/images", json={**body, "prompt": iu.BLOCKED_WORD}, headers=AUTH)
    assert blocked.status_code == 400 and blocked.json is not None
    assert blocked.json["kind"] == "content_policy" and "CONTENT_FILTERED" in blocked.json["error"]
    local = client.post("/images", json={"model": "local", "prompt": "a fox"}, headers=AUTH)
    assert local.status_code == 503 and local.json is not None
    assert local.json["kind"] == "provider_not_installed"
    missing = client.post("/images", json={"prompt": "a fox"}, headers=AUTH)
    assert missing.status_code == 400 and missing.json is not None and missing.json["field"] == "model"


def test_virtual_keys_need_the_images_scope_and_pay_per_image(app: Flask, client: FlaskClient) -> None:
    def key(**spec: object) -> dict[str, str]:
        made = client.post("/admin/keys", json={"name": "k", **spec}, headers=AUTH)
        assert made.status_code == 201, made.text
        assert made.json is not None
        return {"Authorization": f"Bearer {made.json['key']}"}

    chat_only = key(scopes=["chat"])
    nova = {"model": "bedrock.amazon.nova-canvas-v1:0", "prompt": "a fox", "n": 2}
    for path in ("/images", "/v1/images/generations"):
        refused = client.post(path, json=nova, headers=chat_only)
        assert refused.status_code == 403 and "images" in refused.text
    painter = key(scopes=["images"], models=["bedrock.amazon.nova-canvas-v1:0"])
    assert client.post("/images", json=nova, headers=painter).status_code == 200
    other = client.post("/images", json={**nova, "model": "dall-e-3", "n": 1}, headers=painter)
    assert other.status_code == 403 and "dall-e-3" in other.text
    app.extensions[ACCOUNTS_EXTENSION].writer.flush()
    rows = client.get("/usage?by=model", headers=AUTH).json
    assert rows is not None
    (row,) = [r for r in rows["rows"] if r["model"] == "bedrock.amazon.nova-canvas-v1:0"]
    assert row["calls"] == 1 and row["cost_usd"] == pytest.approx(0.08)
