"""Request limits and text checks shared by the native and the OpenAI-compatible routes.

One definition, used by ``src/schemas.py`` (field limits) and ``src/api.parse_body`` (lone surrogates), so
``/chat`` and ``/v1/chat/completions`` (and the embeddings and assessment routes) refuse the same input
with the same message before any provider is called.
"""

from __future__ import annotations

from typing import Any

#: Messages per chat request.
MAX_MESSAGES = 500
#: Characters in one message's content (for ``/v1``: the text of all its parts together).
MAX_CONTENT_CHARS = 1_000_000
#: Texts per embeddings request.
MAX_EMBED_INPUTS = 2048
#: Token ids in one embeddings input given as a token array (OpenAI's per-input limit).
MAX_EMBED_INPUT_TOKENS = 8192
#: Stop sequences per ``/v1`` chat request (OpenAI's own limit).
MAX_STOP_SEQUENCES = 4


def _surrogate_index(text: str) -> int | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def find_lone_surrogate(data: Any, path: str = "") -> tuple[str, int] | None:
    """The dotted path (``messages.0.content``, the same spelling as pydantic's error locations) of the
    first string in ``data`` that holds a lone UTF-16 surrogate (JSON ``"\\ud800"``), and its offset.

    Such a string has no UTF-8 form: it cannot be sent to any provider, so it is bad input (400), not an
    upstream failure. Object keys are checked too (the path then names the key's parent).
    """
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            at = _surrogate_index(value)
            if at is not None:
                return where or "body", at
        elif isinstance(value, dict):
            items = list(value.items())
            for key, item in reversed(items):
                key_text = str(key)
                if _surrogate_index(key_text) is not None:
                    return where or "body", 0
                stack.append((f"{where}.{key_text}" if where else key_text, item))
        elif isinstance(value, list):
            for i in range(len(value) - 1, -1, -1):
                stack.append((f"{where}.{i}" if where else str(i), value[i]))
    return None


def lone_surrogate_message(field: str, offset: int) -> str:
    return (
        f"{field}: contains a lone UTF-16 surrogate (an unpaired \\ud800-\\udfff escape) at character "
        f"{offset}; text must be valid Unicode"
    )


def check_json_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A structured-output schema must describe a JSON object at its root (what OpenAI structured
    outputs and Bedrock tool input schemas require); a schema without ``type`` is left to the provider."""
    kind = schema.get("type")
    if kind is not None and kind != "object":
        raise ValueError(f'must describe a JSON object at its root ("type": "object"), not {kind!r}')
    return schema
