"""Fixtures for retrieval: the real MiniLM embedder (loaded once) and a small real corpus.

The corpus is the shipped lesson material in ``tests/data/codeorg-aiproxy``: one document per rubric
row (a key concept with its evidence levels) and the lesson prompts, with ``lesson`` and
``key_concept`` metadata.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from lib.providers.base import EmbedRequest
from lib.providers.deadline import Deadline
from lib.providers.local import create_local_provider
from tests.conftest import make_settings
from tests.local.conftest import needs_models

DATA = Path(__file__).resolve().parents[1] / "data" / "codeorg-aiproxy"
RUBRICS = {"u3l13": DATA / "u3l13.csv", "cfe": DATA / "cfe_rubric.csv"}
PROMPTS = {"u3l13": DATA / "u3l13.txt", "cfe": DATA / "cfe_prompt.txt"}
Embedder = Callable[[str, Sequence[str]], list[list[float]]]


def corpus() -> list[tuple[str, str, dict[str, str]]]:
    """(document id, text, metadata) for every rubric row and lesson prompt."""
    docs = []
    for lesson, path in RUBRICS.items():
        with path.open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                concept = row["Key Concept"]
                text = "\n".join(f"{k}: {v}" for k, v in row.items() if v)
                docs.append((f"{lesson}/{concept}", text, {"lesson": lesson, "key_concept": concept}))
    for lesson, path in PROMPTS.items():
        docs.append(
            (f"{lesson}/prompt", path.read_text(encoding="utf-8"), {"lesson": lesson, "kind": "prompt"})
        )
    return docs


@pytest.fixture(scope="session")
def minilm() -> Iterator[Embedder]:
    """``embed(model, texts)`` on the real local MiniLM model (what ``local`` collections use)."""
    if needs_models.args and needs_models.args[0]:
        pytest.skip(needs_models.kwargs["reason"])
    provider = create_local_provider(make_settings())

    def embed(model: str, texts: Sequence[str]) -> list[list[float]]:
        return provider.embed(EmbedRequest(model, list(texts)), Deadline(120)).vectors

    yield embed
