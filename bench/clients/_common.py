"""What every Python client script of the compatibility audit shares (stdlib only: each script runs in
its own throwaway venv that holds one client and nothing of the service).

The runner (``bench/client_compat.py``) passes the service's ``/v1`` URL, its key and one model per
provider in ``CLIENT_COMPAT_CONFIG``. A check passes, fails, or is ``refused``: the provider does not
offer the feature and the service said so with a 400 naming it, as API.md documents (the check names the
word the refusal must contain). A check expected to be refused that succeeds is a failure: the refusal
is part of the contract."""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

CONFIG: dict[str, Any] = json.loads(os.environ["CLIENT_COMPAT_CONFIG"])
BASE_URL: str = CONFIG["base_url"]
KEY: str = CONFIG["key"]
PROVIDERS: dict[str, dict[str, Any]] = CONFIG["providers"]
#: A 1x1 PNG: real bytes with the PNG signature, as a client would attach a screenshot.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
PNG_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
WEATHER_PARAMS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_RESULT = "sunny, 21 C"
#: The chat-completions tool, question and forced choice every Python client script sends.
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": WEATHER_PARAMS},
}
WEATHER_QUESTION = "What is the weather in Oslo?"
WEATHER_MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": WEATHER_QUESTION}]
FORCE_WEATHER: dict[str, Any] = {"type": "function", "function": {"name": "get_weather"}}
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


class NotApplicable(Exception):
    """The client has no way to ask for this on this provider (e.g. llm's embedding models are
    OpenAI's own names): recorded as ``n/a`` and left out of the counts."""


#: Every check a client script may define, in report order, with the feature a provider may refuse.
CHECKS: dict[str, str | None] = {
    "chat": None,
    "chat_stream": None,
    "tools": None,
    "tools_stream": None,
    "structured": None,
    "json_schema": None,
    "json_mode": None,
    "partial_stream": None,
    "parallel_tools": None,
    "embeddings": None,
    "responses": None,
    "responses_stream": None,
    "responses_tools": None,
    "responses_parse": None,
    "image": "images",
    "logprobs": "logprobs",
    "models": None,
}


def refusal_for(provider: str, feature: str) -> str | None:
    """The word a documented 400 must name when ``provider`` lacks ``feature`` (else ``None``)."""
    refusals: dict[str, str] = PROVIDERS[provider].get("refuses", {})
    return refusals.get(feature)


def check_tool_args(name: str, arguments: str | dict[str, Any]) -> None:
    """A call of the offered function whose arguments hold its required field."""
    assert name == "get_weather", f"called {name!r}"
    args = json.loads(arguments) if isinstance(arguments, str) else arguments
    assert isinstance(args, dict) and isinstance(args.get("city"), str), f"arguments {args!r}"


def check_tool_answer(provider: str, text: str | None) -> None:
    """The answer after a tool result: the stand-ins quote the result; the local model says anything."""
    assert text, "empty answer after the tool result"
    if provider != "local":
        assert WEATHER_RESULT in text, f"answer does not use the tool result: {text!r}"


def check_person(value: Any) -> None:
    data = json.loads(value) if isinstance(value, str) else value
    if hasattr(data, "model_dump"):
        data = data.model_dump()
    assert isinstance(data, dict), f"not an object: {data!r}"
    assert isinstance(data.get("name"), str) and isinstance(data.get("age"), int), f"not a person: {data!r}"


def check_vector(vector: Any) -> None:
    assert isinstance(vector, list) and len(vector) > 0, f"no vector: {str(vector)[:80]}"
    assert all(isinstance(x, float) for x in vector), "vector of non-floats"


class Matrix:
    """Runs checks, records ``pass``/``refused``/``fail``/``n/a`` with a reason, prints one JSON document."""

    def __init__(self, client: str, version: str) -> None:
        self.client = client
        self.version = version
        self.results: list[dict[str, Any]] = []

    def run(self, check: str, fn: Callable[[str, dict[str, Any]], None], feature: str | None = None) -> None:
        """``fn(provider, models)`` on every provider; ``feature`` names what may be refused."""
        for provider, models in PROVIDERS.items():
            refusal = refusal_for(provider, feature) if feature else None
            started = time.monotonic()
            outcome, detail = "pass", ""
            try:
                fn(provider, models)
                if refusal:
                    outcome, detail = "fail", f"expected a 400 naming {refusal!r}, got an answer"
            except NotApplicable as exc:
                outcome, detail = "n/a", str(exc)
            except Exception as exc:  # any client's own error type
                text = f"{type(exc).__name__}: {exc}"
                status = getattr(exc, "status_code", None)  # litellm's message has no status in it
                if refusal and (status == 400 or "400" in text) and refusal in text:
                    outcome, detail = "refused", text[:300]
                else:
                    outcome, detail = "fail", text[:600]
                    if os.environ.get("CLIENT_COMPAT_TRACE"):
                        traceback.print_exc(file=sys.stderr)
            self.results.append(
                {
                    "client": self.client,
                    "check": check,
                    "provider": provider,
                    "outcome": outcome,
                    "detail": detail,
                    "seconds": round(time.monotonic() - started, 2),
                }
            )
            print(f"{self.client} {check} {provider}: {outcome} {detail[:200]}", file=sys.stderr, flush=True)

    def run_all(self, namespace: dict[str, Any]) -> None:
        """Run the checks ``namespace`` (a script's ``globals()``) defines as functions named after
        them, in ``CHECKS`` order, then print the report."""
        for check, feature in CHECKS.items():
            fn = namespace.get(check)
            if callable(fn):
                self.run(check, fn, feature=feature)
        self.dump()

    def dump(self) -> None:
        print(json.dumps({"client": self.client, "version": self.version, "results": self.results}))
