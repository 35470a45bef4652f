"""Scores: cosine similarity between an emoji's embedding and an output's, rounded to 3 decimals."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from lib.dance.catalog import Catalog, OutputType
from lib.dance.mapfile import WeightsMap
from lib.errors import InvalidUpstreamResponseError

DECIMALS = 3


def round_score(similarity: float) -> float:
    """The score Code.org's generator wrote for a cosine ``similarity``, bit for bit.

    It computed the cosine *distance* ``d = 1 - similarity`` and wrote ``round((d - 1) * -1, 3)``.
    The same operations are done here, so a similarity that rounds to zero from below (or is exactly
    zero) keeps its sign: ``-0.0``, which ``json`` prints as ``-0.0``, as in Code.org's files.
    """
    distance = 1.0 - float(similarity)
    return round((distance - 1) * -1, DECIMALS)


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    va = np.asarray(a, dtype=np.float64)
    vb = np.asarray(b, dtype=np.float64)
    if va.shape != vb.shape or va.ndim != 1:
        raise InvalidUpstreamResponseError(f"embedding sizes differ: {va.shape} vs {vb.shape}")
    na = float(np.linalg.norm(va))
    nb = float(np.linalg.norm(vb))
    if na == 0.0 or nb == 0.0:
        raise InvalidUpstreamResponseError("an embedding is all zeros; cosine similarity is undefined")
    return float(np.dot(va, vb) / (na * nb))


def score_row(emoji_vector: Sequence[float], output_vectors: Sequence[Sequence[float]]) -> list[float]:
    return [round_score(cosine(emoji_vector, ov)) for ov in output_vectors]


def build_map(catalog: Catalog, kind: OutputType, vectors: Mapping[str, Sequence[float]]) -> WeightsMap:
    """The map of one output type from ``vectors`` (text -> embedding), in catalog order."""
    items = catalog.outputs[kind.key]
    output_vectors = [vectors[item.text] for item in items]
    associations = {e.id: score_row(vectors[e.text], output_vectors) for e in catalog.emojis}
    return WeightsMap(
        emoji_associations=associations,
        output=[item.id for item in items],
        model_descriptive_names=[item.text for item in items],
    )
