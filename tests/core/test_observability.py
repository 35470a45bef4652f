"""The request log line, X-Request-Id, and the Prometheus metrics the issue lists: requests and
latency by route/status, upstream latency and tokens by provider/model, errors by kind."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from lib.observability import JsonFormatter
from tests.conftest import API_KEY, make_settings
from tests.support.openai_mock import CHAT, OpenAIMock, Reply, error

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "a private student program"}]}


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def app(openai_mock: OpenAIMock, app_factory) -> Flask:  # type: ignore[no-untyped-def]
    s = make_settings(openai_api_key="sk-obs", openai_base_url=openai_mock.base_url, max_retries=0)
    return app_factory(s)  # type: ignore[no-any-return]


def test_one_log_line_per_request_with_id_route_status_model_duration(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    client = app.test_client()
    with caplog.at_level(logging.INFO, logger="aiproxy.request"):
        r = client.post(
            "/v1/chat/completions",
            json=BODY,
            headers={"Authorization": API_KEY, "X-Request-Id": "web-app.trace:42"},
        )
    assert r.status_code == 200
    assert r.headers["X-Request-Id"] == "web-app.trace:42"  # the caller's id is kept
    lines = [rec for rec in caplog.records if rec.name == "aiproxy.request"]
    assert len(lines) == 1
    rec = lines[0].__dict__
    assert (rec["request_id"], rec["method"], rec["route"], rec["status"], rec["model"]) == (
        "web-app.trace:42",
        "POST",
        "/v1/chat/completions",
        200,
        "gpt-4o",
    )
    assert rec["duration_ms"] >= 0
    # What the service would print: the JSON line with every extra field, free of student text.
    assert "private student program" not in JsonFormatter().format(lines[0])


def test_an_unusable_request_id_is_replaced(app: Flask) -> None:
    r = app.test_client().get("/", headers={"X-Request-Id": "has spaces\tand <tags>"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-Id"])
    other = app.test_client().get("/")
    assert re.fullmatch(r"[0-9a-f]{32}", other.headers["X-Request-Id"])
    assert other.headers["X-Request-Id"] != r.headers["X-Request-Id"]


def test_failed_request_logs_its_error_kind(
    app: Flask, openai_mock: OpenAIMock, caplog: pytest.LogCaptureFixture
) -> None:
    openai_mock.script(CHAT, error(503, "overloaded", type_="server_error"))
    with caplog.at_level(logging.INFO, logger="aiproxy.request"):
        r = app.test_client().post("/chat", json=BODY, headers={"Authorization": API_KEY})
    assert r.status_code == 503
    (rec,) = [rec for rec in caplog.records if rec.name == "aiproxy.request"]
    assert (rec.__dict__["status"], rec.__dict__["error_kind"]) == (503, "upstream_unavailable")


def test_a_stream_that_fails_midway_logs_its_error_kind(
    app: Flask, openai_mock: OpenAIMock, caplog: pytest.LogCaptureFixture
) -> None:
    first = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}],
    }
    openai_mock.script(CHAT, Reply(sse=[first, {"error": {"message": "boom", "type": "server_error"}}]))
    with caplog.at_level(logging.INFO, logger="aiproxy.request"):
        r = app.test_client().post(
            "/v1/chat/completions", json={**BODY, "stream": True}, headers={"Authorization": API_KEY}
        )
        text = r.get_data(as_text=True)
    assert r.status_code == 200 and '"content": "Hel"' in text.replace('":"', '": "') and '"error"' in text
    (rec,) = [rec for rec in caplog.records if rec.name == "aiproxy.request"]
    assert rec.__dict__["status"] == 200  # what was sent
    assert rec.__dict__["error_kind"] == "invalid_upstream_response"  # what went wrong after that


def test_metrics_count_requests_upstream_latency_tokens_and_errors(
    app: Flask, openai_mock: OpenAIMock
) -> None:
    client = app.test_client()
    auth = {"Authorization": API_KEY}
    assert client.post("/v1/chat/completions", json=BODY, headers=auth).status_code == 200
    assert client.post("/v1/chat/completions", json=BODY, headers=auth).status_code == 200
    openai_mock.script(CHAT, error(429, "slow down", type_="rate_limit_error"))
    assert client.post("/chat", json=BODY, headers=auth).status_code == 429
    assert client.post("/chat", json={"model": 5}, headers=auth).status_code == 400

    r = client.get("/metrics", headers=auth)
    assert r.status_code == 200 and r.mimetype == "text/plain"
    m = _samples(r.get_data(as_text=True))

    http = "aiproxy_http_requests_total"
    assert _value(m, http, route="/v1/chat/completions", method="POST", status="200") == 2
    assert _value(m, http, route="/chat", method="POST", status="429") == 1
    assert _value(m, http, route="/chat", method="POST", status="400") == 1
    assert (
        _value(m, "aiproxy_http_request_duration_seconds_count", route="/v1/chat/completions", method="POST")
        == 2
    )

    up = {"provider": "openai", "model": "gpt-4o", "operation": "chat"}
    assert _value(m, "aiproxy_upstream_duration_seconds_count", **up, outcome="ok") == 2
    assert _value(m, "aiproxy_upstream_duration_seconds_count", **up, outcome="rate_limited") == 1
    prompt = _value(m, "aiproxy_upstream_tokens_total", provider="openai", model="gpt-4o", type="prompt")
    completion = _value(
        m, "aiproxy_upstream_tokens_total", provider="openai", model="gpt-4o", type="completion"
    )
    assert prompt > 0 and completion > 0
    assert _value(m, "aiproxy_errors_total", kind="rate_limited") == 1
