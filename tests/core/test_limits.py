"""Shared request limits and text checks (src/limits.py): the same input is refused the same way on the
native and the OpenAI-compatible routes, before any upstream call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from src.limits import MAX_CONTENT_CHARS, check_json_schema, find_lone_surrogate
from tests.assessment.conftest import read
from tests.support.openai_mock import CHAT, EMBEDDINGS, OpenAIMock

LONE = "ok \ud800 tail"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"a": "fine", "b": ["é", "😀"]}, None),
        ({"messages": [{"content": "x"}, {"content": LONE}]}, ("messages.1.content", 3)),
        ({"input": ["a", "\udfff"]}, ("input.1", 0)),
        ({"stop": "\udc00"}, ("stop", 0)),
        ({"deep": {"er": [[{"x": "a\ud83d"}]]}}, ("deep.er.0.0.x", 1)),
        ({"k\ud800": 1}, ("body", 0)),
        ("\ud800", ("body", 0)),
        ({"a": 1, "b": None, "c": True}, None),
    ],
)
def test_find_lone_surrogate(data: Any, expected: tuple[str, int] | None) -> None:
    assert find_lone_surrogate(data) == expected


def test_find_lone_surrogate_reports_the_first_in_document_order() -> None:
    assert find_lone_surrogate({"a": ["ok", "\ud800"], "b": "\ud800"}) == ("a.1", 0)


def test_a_surrogate_pair_written_as_escapes_is_valid() -> None:
    assert find_lone_surrogate(json.loads('{"t": "\\ud83d\\ude00"}')) is None


def test_check_json_schema() -> None:
    schema = {"type": "object", "properties": {}}
    assert check_json_schema(schema) is schema
    assert check_json_schema({"properties": {}}) == {"properties": {}}
    for kind in ("string", "array", ["object", "null"]):
        with pytest.raises(ValueError, match="JSON object at its root"):
            check_json_schema({"type": kind})


def _raw(client: FlaskClient, path: str, body: dict[str, Any], auth: dict[str, str]) -> Any:
    # json.dumps escapes the surrogate as \ud800, exactly what a JavaScript client would send
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=auth)


NATIVE = "native"
V1 = "v1"

CASES = [
    ("/chat", {"messages": [{"role": "user", "content": LONE}]}, "messages.0.content"),
    (
        "/chat",
        {"messages": [{"role": "system", "content": LONE}, {"role": "user", "content": "hi"}]},
        "messages.0.content",
    ),
    (
        "/chat",
        {"messages": [{"role": "user", "content": "hi"}], "json_schema": {"title": LONE}},
        "json_schema.title",
    ),
    ("/embeddings", {"model": "text-embedding-3-small", "input": LONE}, "input"),
    ("/embeddings", {"model": "text-embedding-3-small", "input": ["a", LONE]}, "input.1"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": LONE}]}, "messages.0.content"),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": [{"type": "text", "text": LONE}]}]},
        "messages.0.content.0.text",
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "developer", "content": LONE}, {"role": "user", "content": "hi"}]},
        "messages.0.content",
    ),
    (
        "/v1/chat/completions",
        {"messages": [{"role": "user", "content": "hi"}], "stop": ["a", LONE]},
        "stop.1",
    ),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "user": LONE}, "user"),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "input": [LONE]}, "input.0"),
]


@pytest.mark.parametrize(("path", "body", "field"), CASES)
def test_lone_surrogates_are_400_naming_the_field_with_no_upstream_call(
    client: FlaskClient,
    auth: dict[str, str],
    openai_mock: OpenAIMock,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    r = _raw(client, path, {"model": "gpt-4o", **body}, auth)
    assert r.status_code == 400, r.get_data(as_text=True)
    if path.startswith("/v1/"):
        err = r.json["error"]
        assert err["param"] == field and err["type"] == "invalid_request"
        message = err["message"]
    else:
        assert r.json["field"] == field and r.json["kind"] == "invalid_request"
        message = r.json["error"]
    assert message.startswith(f"{field}: contains a lone UTF-16 surrogate")
    assert openai_mock.calls(CHAT) == [] and openai_mock.calls(EMBEDDINGS) == []


@pytest.mark.parametrize("field", ["code", "prompt", "rubric", "examples"])
def test_lone_surrogates_in_assessment_json_fields_are_400(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock, field: str
) -> None:
    body = {"code": "draw();", "prompt": read("u3l13.txt"), "rubric": read("u3l13.csv"), "model": "gpt-4o"}
    body[field] = json.dumps([["x", "\ud800"]]) if field == "examples" else body.get(field, "") + "\ud800"
    r = _raw(client, "/assessment", body, auth)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.json["field"] == field
    assert openai_mock.calls(CHAT) == []


def test_a_form_post_with_surrogate_bytes_is_decoded_not_forwarded_broken(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    # CESU-style bytes for U+D800 in a form post are not UTF-8: the form decoder replaces them, so what
    # reaches the model is valid text (no 502, no broken upstream body).
    form = (
        "messages=" + "%5B%7B%22role%22%3A%22user%22%2C%22content%22%3A%22a%ED%A0%80b%22%7D%5D&model=gpt-4o"
    )
    r = client.post("/chat", data=form, content_type="application/x-www-form-urlencoded", headers=auth)
    assert r.status_code == 200, r.get_data(as_text=True)
    sent = openai_mock.calls(CHAT)[0].json["messages"][0]["content"]
    sent.encode("utf-8")
    assert sent.startswith("a") and sent.endswith("b")


# --- one limit, both route families ---------------------------------------------------------------


def _error(r: Any) -> tuple[str, str | None]:
    body = r.json
    if isinstance(body["error"], dict):
        return body["error"]["message"], body["error"]["param"]
    return body["error"], body.get("field")


@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_content_over_the_limit_is_400_on_both_routes(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock, path: str
) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * (MAX_CONTENT_CHARS + 1)}]}
    r = client.post(path, json=body, headers=auth)
    assert r.status_code == 400, r.get_data(as_text=True)[:300]
    message, field = _error(r)
    assert field == "messages.0.content" and str(MAX_CONTENT_CHARS) in message.replace(",", "").replace(
        "_", ""
    )
    assert openai_mock.calls(CHAT) == []
    body["messages"][0]["content"] = "x" * MAX_CONTENT_CHARS
    assert client.post(path, json=body, headers=auth).status_code == 200


def test_v1_content_parts_count_together(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    half = MAX_CONTENT_CHARS // 2
    parts = [{"type": "text", "text": "x" * half}, {"type": "text", "text": "y" * (half + 1)}]
    r = client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": parts}]},
        headers=auth,
    )
    assert r.status_code == 400
    assert r.json["error"]["param"] == "messages.0.content"
    assert openai_mock.calls(CHAT) == []


@pytest.mark.parametrize(
    ("path", "extra", "field"),
    [
        ("/chat", {"json_schema": "not an object"}, "json_schema"),
        ("/chat", {"json_schema": ["type", "object"]}, "json_schema"),
        ("/chat", {"json_schema": {"type": "string"}}, "json_schema"),
        ("/v1/chat/completions", {"json_schema": "not an object"}, "json_schema"),
        ("/v1/chat/completions", {"json_schema": {"type": "object"}}, "json_schema"),
        (
            "/v1/chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": "x"}}},
            "response_format.json_schema.schema",
        ),
        (
            "/v1/chat/completions",
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": {"type": "array"}},
                }
            },
            "response_format.json_schema.schema",
        ),
        (
            "/v1/chat/completions",
            {"response_format": {"type": "json_schema", "json_schema": 7}},
            "response_format.json_schema",
        ),
        ("/v1/chat/completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ],
)
def test_bad_schemas_and_stops_are_400(
    client: FlaskClient,
    auth: dict[str, str],
    openai_mock: OpenAIMock,
    path: str,
    extra: dict[str, Any],
    field: str,
) -> None:
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], **extra}
    r = client.post(path, json=body, headers=auth)
    assert r.status_code == 400, r.get_data(as_text=True)
    message, got = _error(r)
    assert got == field, message
    assert "Value error" not in message
    assert openai_mock.calls(CHAT) == []


def test_v1_json_schema_field_points_to_response_format(client: FlaskClient, auth: dict[str, str]) -> None:
    body = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "json_schema": {"type": "object"},
    }
    r = client.post("/v1/chat/completions", json=body, headers=auth)
    assert "response_format" in r.json["error"]["message"]
