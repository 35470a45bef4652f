"""Routes through the real openai SDK against a loopback OpenAI stand-in."""

from __future__ import annotations

import json
import time

import pytest
from flask.testing import FlaskClient

from tests.conftest import API_KEY, API_KEY_2, make_settings
from tests.support.openai_mock import CHAT, EMBEDDINGS, OpenAIMock, Reply, completion, error

CHAT_BODY = {
    "model": "gpt-4o",
    "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
}


def test_chat_returns_reply_usage_and_forwards_history(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    body = {**CHAT_BODY, "temperature": 0.3, "max_tokens": 50, "n": 2}
    r = client.post("/chat", json=body, headers=auth)
    assert r.status_code == 200, r.json
    assert r.json["reply"] == "echo: hi"
    assert len(r.json["choices"]) == 2
    assert (
        r.json["usage"]["total_tokens"]
        == r.json["usage"]["prompt_tokens"] + r.json["usage"]["completion_tokens"]
    )
    sent = openai_mock.calls(CHAT)[0].json
    assert sent["messages"] == body["messages"]
    assert sent["temperature"] == 0.3 and sent["n"] == 2 and sent["max_completion_tokens"] == 50
    sent_headers = openai_mock.calls(CHAT)[0].headers
    assert sent_headers["authorization"] == "Bearer sk-test-configured"
    assert sent_headers["user-agent"].startswith("OpenAI/Python")  # the official SDK made the call
    # The SDK's platform headers (server OS, CPU, Python version) are not sent upstream.
    assert {h for h in sent_headers if h.startswith("x-stainless-")} <= {
        "x-stainless-retry-count",
        "x-stainless-read-timeout",
    }


def test_chat_accepts_a_form_post(client: FlaskClient, auth: dict[str, str]) -> None:
    form = {
        "model": "gpt-4o",
        "messages": json.dumps([{"role": "user", "content": "hello"}]),
        "temperature": "0",
    }
    r = client.post("/chat", data=form, headers=auth)
    assert r.status_code == 200, r.json
    assert r.json["reply"] == "echo: hello"


def test_structured_output_is_requested(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    openai_mock.script(CHAT, completion('{"a": 1}'))
    r = client.post("/chat", json={**CHAT_BODY, "json_schema": schema}, headers=auth)
    assert r.status_code == 200
    fmt = openai_mock.calls(CHAT)[0].json["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["schema"] == schema


def test_embeddings(client: FlaskClient, auth: dict[str, str]) -> None:
    r = client.post(
        "/embeddings", json={"model": "text-embedding-3-small", "input": ["a", "b", "a"]}, headers=auth
    )
    assert r.status_code == 200
    data = r.json["data"]
    assert r.json["dimensions"] == 8 and len(data) == 3
    assert data[0]["embedding"] == data[2]["embedding"] != data[1]["embedding"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": "hi"}, "messages"),
        ({"model": "gpt-4o", "messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "temperature": 9},
            "temperature",
        ),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "surprise": 1}, "surprise"),
        ({"model": "claude-3", "messages": [{"role": "user", "content": "x"}]}, "model"),
    ],
)
def test_bad_chat_input_is_a_400_naming_the_field(
    client: FlaskClient, auth: dict[str, str], body: dict, field: str
) -> None:
    r = client.post("/chat", json=body, headers=auth)
    assert r.status_code == 400
    assert r.json["field"] == field
    assert r.json["kind"] in ("invalid_request", "unknown_model")


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b"\xff\xfe"])
def test_unparseable_bodies_are_400(client: FlaskClient, auth: dict[str, str], raw: bytes) -> None:
    r = client.post("/chat", data=raw, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400 and r.is_json


def test_body_over_the_limit_is_413(openai_mock: OpenAIMock, app_factory) -> None:  # type: ignore[no-untyped-def]
    s = make_settings(openai_api_key="sk", openai_base_url=openai_mock.base_url, max_body_bytes=1000)
    client = app_factory(s).test_client()
    big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 2000}]}
    r = client.post("/chat", json=big, headers={"Authorization": API_KEY})
    assert r.status_code == 413 and r.json["kind"] == "request_too_large"
    assert openai_mock.requests == []


def test_unknown_route_and_method_are_json(client: FlaskClient) -> None:
    r = client.get("/nowhere")
    assert (r.status_code, r.json["kind"]) == (404, "not_found")
    r = client.delete("/chat")
    assert (r.status_code, r.json["kind"]) == (405, "method_not_allowed")
    assert "POST" in r.headers["Allow"]


# --- upstream failures -> documented statuses ---------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "status", "kind"),
    [
        (error(429, "slow down", type_="rate_limit_error"), 429, "rate_limited"),
        (error(500, "boom", type_="server_error"), 503, "upstream_unavailable"),
        (error(503, "overloaded", type_="server_error"), 503, "upstream_unavailable"),
        (error(401, "bad key", type_="authentication_error"), 502, "upstream_authentication"),
        (
            error(400, "This model's maximum context length is 8192 tokens", code="context_length_exceeded"),
            413,
            "context_too_long",
        ),
        (error(400, "temperature is weird"), 400, "invalid_request"),
        (error(404, "The model does not exist", code="model_not_found"), 400, "invalid_request"),
        (
            Reply(raw=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"}),
            502,
            "invalid_upstream_response",
        ),
        (
            Reply(raw=b'{"id": "x", "choices": [', headers={"Content-Type": "application/json"}),
            502,
            "invalid_upstream_response",
        ),
        (
            Reply(body={"id": "x", "object": "chat.completion", "choices": []}),
            502,
            "invalid_upstream_response",
        ),
        (Reply(reset=True), 503, "upstream_unavailable"),
    ],
)
def test_upstream_errors_map_to_documented_statuses(
    openai_mock: OpenAIMock,
    app_factory,
    reply: Reply,
    status: int,
    kind: str,  # type: ignore[no-untyped-def]
) -> None:
    s = make_settings(
        openai_api_key="sk-secret-configured", openai_base_url=openai_mock.base_url, max_retries=1
    )
    client = app_factory(s).test_client()
    openai_mock.script(CHAT, reply, reply)  # the retry sees the same failure
    r = client.post("/chat", json=CHAT_BODY, headers={"Authorization": API_KEY})
    assert (r.status_code, r.json["kind"]) == (status, kind), r.json
    if status in (429, 503):
        assert int(r.headers["Retry-After"]) >= 1
    assert "sk-secret" not in r.get_data(as_text=True)  # no key echoed


def test_rate_limit_retry_after_is_honoured_then_succeeds(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    limited = error(429, "slow down", type_="rate_limit_error")
    limited.headers["Retry-After"] = "1"
    openai_mock.script(CHAT, limited)
    started = time.monotonic()
    r = client.post("/chat", json=CHAT_BODY, headers=auth)
    assert r.status_code == 200
    assert time.monotonic() - started >= 1.0
    assert len(openai_mock.calls(CHAT)) == 2


def test_rate_limit_after_retries_sends_retry_after(openai_mock: OpenAIMock, app_factory) -> None:  # type: ignore[no-untyped-def]
    s = make_settings(openai_api_key="sk", openai_base_url=openai_mock.base_url, max_retries=0)
    limited = error(429, "slow down", type_="rate_limit_error")
    limited.headers["Retry-After"] = "7"
    openai_mock.script(CHAT, limited)
    r = app_factory(s).test_client().post("/chat", json=CHAT_BODY, headers={"Authorization": API_KEY})
    assert r.status_code == 429 and r.headers["Retry-After"] == "7"


def test_hanging_upstream_ends_at_the_deadline_with_504(openai_mock: OpenAIMock, app_factory) -> None:  # type: ignore[no-untyped-def]
    s = make_settings(openai_api_key="sk", openai_base_url=openai_mock.base_url, request_deadline_seconds=1.5)
    openai_mock.script(CHAT, Reply(hang=True), Reply(hang=True), Reply(hang=True), Reply(hang=True))
    started = time.monotonic()
    r = app_factory(s).test_client().post("/chat", json=CHAT_BODY, headers={"Authorization": API_KEY})
    elapsed = time.monotonic() - started
    assert (r.status_code, r.json["kind"]) == (504, "timeout")
    assert elapsed < 2.5


def test_per_request_key_is_used_for_that_request_only(openai_mock: OpenAIMock, app_factory) -> None:  # type: ignore[no-untyped-def]
    from lib.providers.base import Message

    s = make_settings(openai_base_url=openai_mock.base_url)  # no configured OpenAI key
    app = app_factory(s)
    gw = app.extensions["aiproxy"].gateway
    gw.chat("gpt-4o", [Message("user", "a")], api_key="sk-request-one")
    assert openai_mock.requests[-1].headers["authorization"] == "Bearer sk-request-one"
    # The next request without a key must not inherit it.
    r = app.test_client().post("/chat", json=CHAT_BODY, headers={"Authorization": API_KEY})
    assert (r.status_code, r.json["kind"]) == (502, "upstream_authentication")
    assert len(openai_mock.requests) == 1


def test_v1_errors_use_openai_shape(client: FlaskClient) -> None:
    r = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": []},
        headers={"Authorization": f"Bearer {API_KEY_2}"},
    )
    assert r.status_code == 400
    assert r.json["error"]["type"] == "invalid_request" and "messages" in r.json["error"]["message"]


def test_v1_stream_with_n_streams_every_choice(client: FlaskClient) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x y"}], "stream": True, "n": 2}
    r = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    text: dict[int, str] = {}
    finish: dict[int, str] = {}
    for e in events:
        for c in e["choices"]:
            text[c["index"]] = text.get(c["index"], "") + (c["delta"].get("content") or "")
            if c["finish_reason"]:
                finish[c["index"]] = c["finish_reason"]
    assert text == {0: "echo: x y", 1: "echo: x y"} and finish == {0: "stop", 1: "stop"}


def test_v1_stream_with_n_on_bedrock_is_400_naming_n(client: FlaskClient) -> None:
    body = {"model": "bedrock.us.amazon.nova-pro-v1:0", "messages": [{"role": "user", "content": "x"}]}
    body |= {"stream": True, "n": 2}
    r = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 400 and r.json["error"]["param"] == "n"


def test_stream_failure_before_first_token_is_a_normal_error(
    client: FlaskClient, openai_mock: OpenAIMock
) -> None:
    openai_mock.script(CHAT, *[error(401, "bad key", type_="authentication_error")] * 2)
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "stream": True}
    r = client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 502 and r.json["error"]["type"] == "upstream_authentication"


def test_embeddings_upstream_count_mismatch_is_502(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    bad = {
        "object": "list",
        "model": "m",
        "data": [{"object": "embedding", "index": 0, "embedding": [1.0]}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    openai_mock.script(EMBEDDINGS, bad, bad, bad, bad)
    r = client.post(
        "/embeddings", json={"model": "text-embedding-3-small", "input": ["a", "b"]}, headers=auth
    )
    assert (r.status_code, r.json["kind"]) == (502, "invalid_upstream_response")


def test_native_chat_tools_and_tool_turns(client: FlaskClient, openai_mock: OpenAIMock) -> None:
    auth = {"Authorization": f"Bearer {API_KEY}"}
    tool = {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}
    body: dict[str, object] = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "find x"}],
        "tools": [tool],
    }
    r = client.post("/chat", json=body, headers=auth)
    assert r.status_code == 200, r.json
    call = r.json["choices"][0]["tool_calls"][0]
    assert r.json["choices"][0]["finish_reason"] == "tool_calls"
    assert call["name"] == "lookup" and json.loads(call["arguments"]) == {"q": "sample"}
    body["messages"] = [
        {"role": "user", "content": "find x"},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "x is 4"},
    ]
    r = client.post("/chat", json=body, headers=auth)
    assert r.status_code == 200 and r.json["reply"] == "tool said: x is 4"
    sent = openai_mock.calls(CHAT)[-1].json
    assert sent["tools"][0]["function"]["name"] == "lookup"
    assert sent["messages"][2] == {"role": "tool", "tool_call_id": call["id"], "content": "x is 4"}
    body["tool_choice"] = "nope"
    r = client.post("/chat", json=body, headers=auth)
    assert r.status_code == 400 and r.json["field"] == "tool_choice"
