"""MiniLM embeddings through the local provider: real inference, no network."""

from __future__ import annotations

import math

import pytest

from lib.errors import InvalidRequestError, UnknownModelError
from lib.providers.base import EmbedRequest
from lib.providers.deadline import Deadline
from lib.providers.local import EMBED_MODEL_ID, LocalProvider
from lib.providers.local.install import minilm_model_dir
from tests.local.conftest import needs_models

pytestmark = [pytest.mark.local, needs_models]


def embed(provider: LocalProvider, texts: list[str], model: str = "local") -> list[list[float]]:
    return provider.embed(EmbedRequest(model, texts), Deadline(60)).vectors


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_cat_is_nearer_kitten_than_car(local_provider: LocalProvider) -> None:
    cat, kitten, car = embed(local_provider, ["cat", "kitten", "car"])
    assert dot(cat, kitten) > dot(cat, car) + 0.1


def test_vectors_are_384_dimensional_and_normalised(local_provider: LocalProvider) -> None:
    result = local_provider.embed(
        EmbedRequest("local-minilm", ["a", "a longer sentence about robots"]), Deadline(60)
    )
    assert result.model == EMBED_MODEL_ID
    assert result.provider == "local"
    assert result.dimensions == 384
    for vec in result.vectors:
        assert len(vec) == 384
        assert math.isclose(math.sqrt(dot(vec, vec)), 1.0, abs_tol=1e-5)


def test_identical_texts_give_identical_vectors(local_provider: LocalProvider) -> None:
    first = embed(local_provider, ["The quick brown fox", "The quick brown fox"])
    assert first[0] == first[1]
    again = embed(local_provider, ["The quick brown fox"])
    assert again[0] == first[0]


def test_different_texts_give_different_vectors(local_provider: LocalProvider) -> None:
    a, b = embed(local_provider, ["sunny beach holiday", "quarterly tax report"])
    assert dot(a, b) < 0.5


def test_usage_counts_real_tokenizer_tokens(local_provider: LocalProvider) -> None:
    from tokenizers import Tokenizer  # independent of sentence-transformers: the raw tokenizer file

    tok = Tokenizer.from_file(str(minilm_model_dir() / "tokenizer.json"))
    tok.no_padding()
    texts = ["cat", "Hello world, this is a test of the tokenizer!"]
    expected = sum(len(tok.encode(t).ids) for t in texts)  # includes [CLS] and [SEP]
    result = local_provider.embed(EmbedRequest("local", texts), Deadline(60))
    assert result.usage.prompt_tokens == expected
    assert result.usage.completion_tokens == 0


def test_long_batch_is_chunked_in_order(local_provider: LocalProvider) -> None:
    texts = [f"sentence number {i}" for i in range(70)]  # more than one internal chunk of 64
    vectors = embed(local_provider, texts)
    assert len(vectors) == 70
    single = embed(local_provider, [texts[66]])[0]
    assert dot(vectors[66], single) > 0.9999


def test_errors_for_wrong_names_dimensions_and_empty_input(local_provider: LocalProvider) -> None:
    with pytest.raises(InvalidRequestError, match="chat model"):
        embed(local_provider, ["x"], model="local-smollm2")
    with pytest.raises(UnknownModelError, match="local-bogus"):
        embed(local_provider, ["x"], model="local-bogus")
    with pytest.raises(InvalidRequestError) as exc:
        local_provider.embed(EmbedRequest("local", ["x"], dimensions=256), Deadline(60))
    assert exc.value.field == "dimensions"
    with pytest.raises(InvalidRequestError) as exc:
        embed(local_provider, [])
    assert exc.value.field == "input"
    ok = local_provider.embed(EmbedRequest("local", ["x"], dimensions=384), Deadline(60))
    assert ok.dimensions == 384


def test_frozen_forward_gives_sentence_transformers_vectors() -> None:
    # The fast path (frozen BERT, our own pooling) must be the checkpoint's own pipeline: same
    # vectors as SentenceTransformer.encode, whatever the lengths and padding in a batch.
    from lib.providers.local.embedder import CHUNK, MiniLMEmbedder

    embedder = MiniLMEmbedder(minilm_model_dir(), n_threads=1)
    assert embedder._frozen is not None  # the fast path is really taken on this machine
    texts = ["x", "cat", "a program that draws a sprite " * 30, "word " * 400, "émoji 🎉 ünïcode"]
    texts += [f"student program number {i} moves the sprite {i % 7} steps" for i in range(CHUNK + 3)]
    vectors, tokens = embedder.embed(texts)
    expected: list[list[float]] = []
    for start in range(0, len(texts), CHUNK):
        expected += embedder._encode_with_library(texts[start : start + CHUNK])[0]
    assert tokens == sum(embedder.count_tokens(texts))
    worst = max(abs(x - y) for v, w in zip(vectors, expected, strict=True) for x, y in zip(v, w, strict=True))
    assert worst < 1e-5
    # LOCAL_EMBED_FROZEN=false: the library's encode, same vectors
    from lib.providers.local import create_local_provider
    from tests.local.conftest import local_settings

    provider = create_local_provider(local_settings(local_embed_frozen=False))
    assert provider.embed_frozen is False
    eager = MiniLMEmbedder(minilm_model_dir(), n_threads=1, frozen=provider.embed_frozen)
    assert eager._frozen is None
    again, again_tokens = eager.embed(texts[:5])
    assert again_tokens == sum(embedder.count_tokens(texts[:5]))
    assert (
        max(abs(x - y) for v, w in zip(again, vectors[:5], strict=True) for x, y in zip(v, w, strict=True))
        < 1e-5
    )
