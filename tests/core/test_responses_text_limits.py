"""/v1/responses holds message text to the chat routes' 1,000,000-character limit wherever the text is
(a string input, a message's content as text or parts, a function call's output or arguments,
instructions), and the 400's ``param`` names the field as the body spells it, before any upstream call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lib.providers.gateway import DEFAULT_FACTORIES, Gateway
from tests.conftest import API_KEY, make_settings

TOO_LONG = "x" * 1_000_001
HALF = "y" * 600_000
CALL = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}


class Refusing:
    """A provider that fails the test if it is ever called."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the upstream was called ({name})")


@pytest.fixture
def post(app_factory: Callable[..., Any]) -> Callable[[dict[str, Any]], Any]:
    settings = make_settings(openai_api_key="sk-limits", max_body_bytes=8 * 1024 * 1024)
    app = app_factory(
        settings, Gateway(settings, factories={**DEFAULT_FACTORIES, "openai": lambda _s: Refusing()})
    )
    client = app.test_client()
    return lambda body: client.post(
        "/v1/responses", json={"model": "gpt-4o", **body}, headers={"Authorization": API_KEY}
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": TOO_LONG}, "input"),
        ({"input": "hi", "instructions": TOO_LONG}, "instructions"),
        ({"input": [{"role": "user", "content": TOO_LONG}]}, "input.0.content"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": TOO_LONG}]}]},
            "input.0.content.0.text",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text", "text": HALF}] * 2}]},
            "input.0.content",
        ),
        (
            {"input": [CALL, {"type": "function_call_output", "call_id": "c", "output": TOO_LONG}]},
            "input.1.output",
        ),
        (
            {
                "input": [
                    CALL,
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_text", "text": HALF}] * 2,
                    },
                ]
            },
            "input.1.output",
        ),
        (
            {
                "input": [
                    {**CALL, "arguments": TOO_LONG},
                    {"type": "function_call_output", "call_id": "c", "output": "o"},
                ]
            },
            "input.0.arguments",
        ),
    ],
    ids=[
        "input",
        "instructions",
        "content-text",
        "content-part",
        "parts-together",
        "output-text",
        "output-parts",
        "arguments",
    ],
)
def test_text_over_the_limit_is_400_naming_the_field_as_sent(
    post: Callable[[dict[str, Any]], Any], body: dict[str, Any], param: str
) -> None:
    r = post(body)
    assert r.status_code == 400, r.json
    assert r.json["error"]["param"] == param, r.json
    assert "1000000" in r.json["error"]["message"]
