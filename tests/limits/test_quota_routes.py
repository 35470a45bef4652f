"""Limits on the request path: 429 ``quota`` with Retry-After, TPM from the upstream's usage (plain and
streamed), concurrency freed when the answer is sent, batch-class back-off, metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from lib.limits.usage import CURRENT_LEASE
from tests.conftest import API_KEY, make_settings
from tests.support.openai_mock import CHAT, OpenAIMock, error

AUTH = {"Authorization": API_KEY}
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}


def _app(app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path, **limits: Any) -> Flask:
    settings = make_settings(
        openai_api_key="sk-test",
        openai_base_url=openai_mock.base_url,
        limits_sqlite_path=str(tmp_path / "limits.db"),
        max_retries=0,
        **limits,
    )
    return app_factory(settings)


def _metric(app: Flask, name: str, **labels: str) -> float:
    value = app.extensions["aiproxy"].metrics.registry.get_sample_value(name, labels)
    return float(value or 0.0)


def test_rpm_429_quota_with_retry_after_on_native_and_v1_routes(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_rpm=3)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/v1/models", headers=AUTH).status_code == 200
    r = client.get("/v1/models", headers=AUTH)
    assert r.status_code == 429
    assert 59 <= int(r.headers["Retry-After"]) <= 60
    err = r.get_json()["error"]
    assert err["code"] == "quota" and err["type"] == "quota"
    assert "3 requests per minute" in err["message"] and API_KEY not in err["message"]
    r = client.post("/chat", json=BODY, headers=AUTH)
    assert r.status_code == 429 and r.get_json()["kind"] == "quota" and "Retry-After" in r.headers
    assert _metric(app, "aiproxy_quota_rejections_total", limit="rpm") == 2
    assert not openai_mock.calls(CHAT)  # refused before any upstream call
    assert client.get("/", headers=AUTH).status_code == 200  # health is never limited


def test_tpm_counts_the_upstreams_usage(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_tpm=20)
    client = app.test_client()
    first = client.post("/chat", json=BODY, headers=AUTH)
    assert first.status_code == 200
    used = first.get_json()["usage"]["total_tokens"]
    assert 0 < used < 20
    while used < 20:  # pre-checked: admitted while the window is under the limit
        r = client.post("/chat", json=BODY, headers=AUTH)
        assert r.status_code == 200
        used += r.get_json()["usage"]["total_tokens"]
    r = client.post("/chat", json=BODY, headers=AUTH)
    assert r.status_code == 429 and r.get_json()["kind"] == "quota"
    assert "20 tokens per minute" in r.get_json()["error"]


def test_tpm_counts_a_streamed_answer_when_it_ends(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_tpm=5)
    client = app.test_client()
    body = {**BODY, "stream": True}
    r = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 200 and "[DONE]" in r.get_data(as_text=True)
    assert CURRENT_LEASE.get() is None  # released when the stream was closed
    r = client.post("/v1/chat/completions", json=body, headers=AUTH)
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "quota"


def test_concurrency_slot_is_freed_when_the_answer_is_sent(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_concurrency=1)
    client = app.test_client()
    for _ in range(3):  # one at a time: never over the cap
        assert client.post("/chat", json=BODY, headers=AUTH).status_code == 200
    openai_mock.script(CHAT, error(400, "bad"))
    assert client.post("/chat", json=BODY, headers=AUTH).status_code == 400  # an error frees it too
    assert client.post("/chat", json=BODY, headers=AUTH).status_code == 200


def test_concurrency_cap_refuses_while_a_request_is_in_flight(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_concurrency=1)
    quota = app.extensions["aiproxy.quota"]
    held = quota.limiter.acquire("root", quota.root_limits)  # another worker's request in flight
    client = app.test_client()
    r = client.post("/chat", json=BODY, headers=AUTH)
    assert r.status_code == 429 and "1 requests at once" in r.get_json()["error"]
    assert r.headers["Retry-After"] == "1"
    held.release()
    assert client.post("/chat", json=BODY, headers=AUTH).status_code == 200


@pytest.mark.parametrize("root_class", ["batch", "interactive"])
def test_batch_class_backs_off_after_an_upstream_throttle(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path, root_class: str
) -> None:
    app = _app(app_factory, openai_mock, tmp_path, root_key_class=root_class, batch_cooldown_seconds=30)
    client = app.test_client()
    openai_mock.script(CHAT, error(429, "slow down", type_="rate_limit_error"))
    r = client.post("/chat", json=BODY, headers=AUTH)
    assert r.status_code == 429 and r.get_json()["kind"] == "rate_limited"  # the upstream's own
    r = client.post("/chat", json=BODY, headers=AUTH)
    if root_class == "batch":
        assert r.status_code == 429 and r.get_json()["kind"] == "quota"
        assert "back off" in r.get_json()["error"] and int(r.headers["Retry-After"]) <= 30
        assert _metric(app, "aiproxy_quota_rejections_total", limit="batch_backoff") == 1
    else:
        assert r.status_code == 200  # interactive callers keep the capacity


def test_no_limits_configured_touches_no_store(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path
) -> None:
    app = _app(app_factory, openai_mock, tmp_path)
    client = app.test_client()
    for _ in range(5):
        assert client.post("/chat", json=BODY, headers=AUTH).status_code == 200
    assert not (tmp_path / "limits.db").exists()
