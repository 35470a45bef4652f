"""Bad text refused on the wire: the real service under gunicorn, called by the official openai SDK and
by raw HTTP over a socket (code we did not write), against a loopback OpenAI stand-in that must see
nothing."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.support.openai_mock import CHAT, EMBEDDINGS, OpenAIMock
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "wire-key"


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def service(upstream: OpenAIMock) -> Iterator[Service]:
    env = {"AIPROXY_API_KEY": KEY, "OPENAI_API_KEY": "sk-wire", "OPENAI_BASE_URL": upstream.base_url}
    with Service(env, workers=1) as svc:
        yield svc


def _post_raw(service: Service, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        conn.request(
            "POST", path, body=raw, headers={"Content-Type": "application/json", "Authorization": KEY}
        )
        resp = conn.getresponse()
        assert resp.getheader("Content-Type", "").startswith("application/json")
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def test_openai_sdk_cannot_even_encode_a_lone_surrogate() -> None:
    # Why the surrogate tests below use raw HTTP: the SDK encodes bodies as UTF-8 and fails client-side.
    # A browser's JSON.stringify (and Python's json.dumps) send the six characters \ud800, which we refuse.
    sdk = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key=KEY, max_retries=0)
    with pytest.raises(UnicodeEncodeError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "a\ud800b"}])


def test_openai_sdk_sees_the_shared_limits_as_400_with_param(service: Service, upstream: OpenAIMock) -> None:
    sdk = openai.OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x" * 1_000_001}])
    assert info.value.status_code == 400 and info.value.param == "messages.0.content"
    assert "1000000" in info.value.message
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "a", "schema": {"type": "string"}},
            },
        )
    assert info.value.param == "response_format.json_schema.schema"
    with pytest.raises(openai.BadRequestError) as info:
        sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], extra_body={"json_schema": "x"}
        )
    assert info.value.param == "json_schema" and "response_format" in info.value.message
    assert upstream.calls(CHAT) == []


@pytest.mark.parametrize(
    ("path", "raw", "field"),
    [
        # the escape exactly as it travels: six ASCII bytes \ud800 inside a JSON string
        (
            "/chat",
            b'{"model":"gpt-4o","messages":[{"role":"user","content":"x\\ud800"}]}',
            "messages.0.content",
        ),
        ("/embeddings", b'{"model":"text-embedding-3-small","input":"\\udbff"}', "input"),
        ("/v1/embeddings", b'{"model":"text-embedding-3-small","input":["a","\\udbff"]}', "input.1"),
        (
            "/v1/chat/completions",
            b'{"model":"gpt-4o","messages":[{"role":"user","content":"\\ud800"}]}',
            "messages.0.content",
        ),
        ("/assessment", b'{"code":"a();","prompt":"p\\ud800","rubric":"Key Concept\\nA"}', "prompt"),
        (
            "/v1/chat/completions",
            b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"stop":"\\udc00"}',
            "stop",
        ),
    ],
)
def test_raw_http_gets_400_naming_the_field(
    service: Service, upstream: OpenAIMock, path: str, raw: bytes, field: str
) -> None:
    status, body = _post_raw(service, path, raw)
    assert status == 400, body
    if path.startswith("/v1/"):
        assert body["error"]["param"] == field and body["error"]["type"] == "invalid_request"
    else:
        assert body["field"] == field and body["kind"] == "invalid_request"
        assert "lone UTF-16 surrogate" in body["error"]
    assert upstream.calls(CHAT) == [] and upstream.calls(EMBEDDINGS) == []


def test_raw_http_content_limit_matches_on_both_routes(service: Service, upstream: OpenAIMock) -> None:
    big = "x" * 1_000_001
    for path in ("/chat", "/v1/chat/completions"):
        raw = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": big}]}).encode()
        status, body = _post_raw(service, path, raw)
        assert status == 400, body
        field = body["error"]["param"] if path.startswith("/v1/") else body["field"]
        assert field == "messages.0.content"
    assert upstream.calls(CHAT) == []
