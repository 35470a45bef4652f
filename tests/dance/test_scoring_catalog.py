"""Cosine similarity and rounding against hand-computed values; the catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from lib.dance.catalog import DEFAULT_CATALOG, OUTPUT_TYPES, load_catalog, text_from_id
from lib.dance.scoring import build_map, cosine, round_score, score_row
from lib.errors import InvalidRequestError, InvalidUpstreamResponseError
from tests.dance.conftest import TEST_CATALOG


@pytest.mark.parametrize(
    ("a", "b", "exact", "rounded"),
    [
        ([1, 0], [1, 1], 1 / math.sqrt(2), 0.707),  # 0.70710678...
        ([3, 4], [4, 3], 24 / 25, 0.96),  # 24 / (5 * 5)
        ([1, 2, 3], [4, 5, 6], 32 / math.sqrt(14 * 77), 0.975),  # 0.974631...
        ([1, 0, 0], [0, 1, 0], 0.0, 0.0),
        ([2, 0], [-3, 0], -1.0, -1.0),
        ([1, 1, 1, 1], [1, 1, 1, 0], 3 / (2 * math.sqrt(3)), 0.866),  # 0.866025...
        ([5, 1], [1, 5], 10 / 26, 0.385),  # 0.384615...
    ],
)
def test_cosine_and_rounding_match_hand_computation(
    a: list[float], b: list[float], exact: float, rounded: float
) -> None:
    assert cosine(a, b) == pytest.approx(exact, abs=1e-12)
    assert round_score(cosine(a, b)) == rounded


def test_cosine_ignores_vector_length() -> None:
    assert cosine([1, 2, 3], [4, 5, 6]) == pytest.approx(cosine([10, 20, 30], [0.4, 0.5, 0.6]), abs=1e-12)


def codeorg_score(similarity: float) -> float:
    """Code.org's generator, written out: cosine distance d, then round((d-1)*-1, 3)."""
    d = 1 - similarity
    return round((d - 1) * -1, 3)


def test_rounding_is_codeorgs_and_keeps_negative_zero() -> None:
    assert round_score(0.51049) == 0.51
    assert round_score(0.19961) == 0.2
    # a similarity that rounds to zero from below keeps its sign, as in Code.org's files
    assert math.copysign(1, round_score(-0.0004)) == -1.0 and json.dumps(round_score(-0.0004)) == "-0.0"
    assert math.copysign(1, round_score(0.0004)) == 1.0
    # exactly zero: (1 - 0 - 1) * -1 is -0.0 in IEEE arithmetic, so Code.org wrote -0.0 there too
    assert json.dumps(round_score(0.0)) == json.dumps(codeorg_score(0.0)) == "-0.0"
    rng = np.random.default_rng(7)
    for value in [*rng.uniform(-1, 1, 5000), *rng.uniform(-0.002, 0.002, 5000), 0.0125, 0.0005, -0.0005]:
        assert json.dumps(round_score(float(value))) == json.dumps(codeorg_score(float(value)))


def test_zero_or_mismatched_embeddings_are_upstream_errors() -> None:
    with pytest.raises(InvalidUpstreamResponseError):
        cosine([0, 0], [1, 0])
    with pytest.raises(InvalidUpstreamResponseError):
        cosine([1, 0, 0], [1, 0])


def test_score_row_is_in_output_order() -> None:
    assert score_row([1, 0], [[1, 0], [0, 1], [1, 1], [-1, 0]]) == [1.0, 0.0, 0.707, -1.0]


def test_build_map_uses_catalog_order_and_texts() -> None:
    catalog = load_catalog(TEST_CATALOG)
    kind = OUTPUT_TYPES[2]  # foreground effects
    items = catalog.outputs[kind.key]
    # output j gets basis vector j; every emoji points at output (index of emoji) mod n
    n = len(items)
    vectors: dict[str, list[float]] = {}
    for j, item in enumerate(items):
        vectors[item.text] = [1.0 if k == j else 0.0 for k in range(n)]
    for i, e in enumerate(catalog.emojis):
        vectors[e.text] = [1.0 if k == i % n else 0.0 for k in range(n)]
    m = build_map(catalog, kind, vectors)
    assert m.output == [i.id for i in items]
    assert m.model_descriptive_names == [i.text for i in items]
    assert list(m.emoji_associations) == [e.id for e in catalog.emojis]
    for i, e in enumerate(catalog.emojis):
        row = m.emoji_associations[e.id]
        assert row.index(1.0) == i % n and sum(row) == 1.0


def test_text_from_id() -> None:
    assert text_from_id("smiling-face-with-hearts") == "smiling face with hearts"
    assert text_from_id("pile-of-poo") == "pile of poo"
    assert text_from_id("rocket") == "rocket"
    assert text_from_id("snake_case-id") == "snake case id"


def test_project_catalog_matches_the_shared_fixture_counts() -> None:
    catalog = load_catalog(DEFAULT_CATALOG)
    assert {k: len(v) for k, v in catalog.outputs.items()} == {
        "palettes": 21,
        "background_effects": 29,
        "foreground_effects": 17,
    }
    assert len(catalog.emojis) == 25
    assert catalog.emojis[1].text == "smiling face with hearts"
    assert json.loads(DEFAULT_CATALOG.read_text()) == json.loads(TEST_CATALOG.read_text())
    texts = catalog.all_texts()
    assert len(texts) == len(set(texts))


def test_emoji_objects_may_carry_their_own_text(tmp_path: Path) -> None:
    doc = json.loads(TEST_CATALOG.read_text())
    doc["emojis"][0] = {"id": "cyclone", "text": "a swirling storm"}
    doc["emojis"][1] = {"id": "smiling-face-with-hearts"}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    catalog = load_catalog(path)
    assert catalog.emojis[0].text == "a swirling storm"
    assert catalog.emojis[1].text == "smiling face with hearts"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("palettes"),
        lambda d: d["palettes"].append(dict(d["palettes"][0])),  # duplicate id
        lambda d: d["background_effects"][0].update(text=""),
        lambda d: d.update(emojis=["a", "a", "b"]),
        lambda d: d.update(emojis=[1, 2, 3]),
    ],
)
def test_bad_catalogs_are_refused_with_a_clear_error(tmp_path: Path, mutate: object) -> None:
    doc = json.loads(TEST_CATALOG.read_text())
    mutate(doc)  # type: ignore[operator]
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InvalidRequestError, match="catalog"):
        load_catalog(path)
