"""Chunk offsets and the two vector indexes (exact numpy, HNSW usearch) behind one interface."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lib.retrieval.chunking import chunk_text
from lib.retrieval.index import HNSW_THRESHOLD, ExactIndex, HnswIndex, choose_kind, new_index
from lib.retrieval.service import exact_recall


def test_chunks_are_exact_slices_with_overlap_and_whole_characters() -> None:
    text = "Sprites move across the screen. héllo wörld 😀 " * 60
    chunks = chunk_text(text, size=20, overlap=5)
    assert len(chunks) > 10
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    for before, after in itertools.pairwise(chunks):
        assert after.start < before.end  # neighbours overlap
    assert chunks[0].start == 0 and chunks[-1].end == len(text)


def test_short_and_blank_texts() -> None:
    (only,) = chunk_text("short text")
    assert (only.start, only.end, only.text) == (0, 10, "short text")
    assert chunk_text("   \n ") == []
    with pytest.raises(ValueError):
        chunk_text("x", size=4, overlap=4)


def test_same_text_same_hash() -> None:
    a, b = chunk_text("one two"), chunk_text("one two")
    assert a[0].content_hash == b[0].content_hash != chunk_text("one three")[0].content_hash


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_one_interface_add_search_remove(kind: str) -> None:
    rng = np.random.default_rng(1)
    vectors = _unit(rng, 500, 32)
    index = new_index(kind, 32)  # type: ignore[arg-type]
    keys = np.arange(1000, 1500, dtype=np.int64)
    index.add(keys, vectors)
    assert len(index) == 500 and index.memory_bytes > 0
    found, scores = index.search(vectors[7], 3)
    assert found[0] == 1007 and scores[0] == pytest.approx(1.0, abs=1e-4)
    assert list(scores) == sorted(scores, reverse=True)
    np.testing.assert_allclose(index.vectors(np.array([1010, 1003])), vectors[[10, 3]], atol=1e-6)
    index.remove(np.array([1007], dtype=np.int64))
    assert len(index) == 499
    assert 1007 not in index.search(vectors[7], 5)[0].tolist()


def test_hnsw_recall_against_exact() -> None:
    rng = np.random.default_rng(2)
    vectors = _unit(rng, 4000, 64)
    keys = np.arange(4000, dtype=np.int64)
    exact, hnsw = ExactIndex(64), HnswIndex(64)
    exact.add(keys, vectors)
    hnsw.add(keys, vectors)
    queries = vectors[:100] + 0.3 * _unit(rng, 100, 64)
    assert exact_recall(hnsw, exact, queries, 10) >= 0.95
    hnsw.expansion_search = 8  # a narrower search finds less of the true top-10
    assert hnsw.expansion_search == 8
    assert exact_recall(hnsw, exact, queries, 10) < exact_recall(exact, exact, queries, 10)
    assert exact_recall(exact, exact, queries, 10) == 1.0


def test_empty_indexes_return_nothing() -> None:
    for index in (ExactIndex(8), HnswIndex(8)):
        keys, scores = index.search(np.ones(8, dtype=np.float32), 3)
        assert len(keys) == len(scores) == 0


def test_kind_by_size_unless_set() -> None:
    assert choose_kind(10) == "exact"
    assert choose_kind(HNSW_THRESHOLD) == "hnsw"
    assert choose_kind(10, "hnsw") == "hnsw" and choose_kind(10**6, "exact") == "exact"
