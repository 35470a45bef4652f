"""Cold start: while the HNSW index builds on a background OS thread, queries are answered by exact
search; the first query after the build switches to the index, with the writes made meanwhile.

The build is held open by a gate inside the index's first ``add`` (the background build), so "during"
and "after" are decided by the test, not by timing; which index answered is read from ``LiveIndex``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from lib.retrieval.index import HnswIndex, IndexKind, Keys, Matrix, VectorIndex
from lib.retrieval.service import Retrieval
from lib.retrieval.store import CollectionStore
from lib.store import Store
from tests.retrieval.conftest import Embedder, corpus

QUESTION = "Which sprites have properties updated inside the draw loop?"
LATE = "Late document: the turtle draws a spiral with a for loop and a growing step."


class GatedHnsw(HnswIndex):
    """An HNSW index whose first ``add`` (the background build) waits for ``gate`` and records its thread."""

    def __init__(self, dimensions: int, gate: threading.Event, fail: bool = False) -> None:
        super().__init__(dimensions)
        self.gate, self.fail = gate, fail
        self.build_thread: int | None = None

    def add(self, keys: Keys, vectors: Matrix) -> None:
        if self.build_thread is None:
            self.build_thread = threading.get_ident()
            assert self.gate.wait(60)
            if self.fail:
                raise MemoryError("no room for the graph")
        super().add(keys, vectors)


@pytest.fixture
def store(database_url: str) -> Iterator[CollectionStore]:
    db = Store(database_url)
    db.migrate()
    yield CollectionStore(db.engine)
    db.dispose()


def _load(store: CollectionStore, embed: Embedder) -> None:
    coll, _ = store.create("lessons", "local", 200, 40)
    for doc_id, text, meta in corpus():
        store.upsert(coll, doc_id, text, meta, embed)


def _gated(store: CollectionStore, fail: bool = False) -> tuple[Retrieval, threading.Event, list[GatedHnsw]]:
    gate, made = threading.Event(), []

    def make_index(kind: IndexKind, dimensions: int) -> VectorIndex:
        assert kind == "hnsw"
        made.append(GatedHnsw(dimensions, gate, fail))
        return made[-1]

    return Retrieval(store, index_kind="hnsw", make_index=make_index), gate, made


def _ids(retrieval: Retrieval, text: str, embed: Embedder, k: int = 5) -> list[str]:
    return [h.doc_id for h in retrieval.query_text("lessons", text, k, embed)]


def test_queries_during_the_build_are_exact_and_after_it_use_the_index(
    store: CollectionStore, minilm: Embedder
) -> None:
    _load(store, minilm)
    exact = Retrieval(store, index_kind="exact")
    retrieval, gate, made = _gated(store)

    during = _ids(retrieval, QUESTION, minilm)  # the cold query: answered while the build is held
    live = retrieval.live("lessons")
    assert live.index is not None and live.index.kind == "exact" and live.building is not None
    assert live.exact_while_building == 1 and live.switches == 0
    assert during == _ids(exact, QUESTION, minilm)
    assert during[0] == "u3l13/Modularity - Sprites and Sprite Properties"
    assert made[0].build_thread not in (None, threading.get_ident())  # built on another OS thread

    # writes during the build go to the exact index now and are replayed into HNSW at the switch
    coll = store.get("lessons")
    store.upsert(coll, "late", LATE, {"lesson": "late"}, minilm)
    store.delete_document(coll, during[0])
    assert _ids(retrieval, LATE, minilm, 1) == ["late"]
    assert during[0] not in _ids(retrieval, QUESTION, minilm)
    assert retrieval.live("lessons").exact_while_building == 3

    gate.set()
    live = retrieval.wait_built("lessons", timeout=60)
    assert live.building is None and live.switches == 1
    assert live.index is made[0] and live.index.kind == "hnsw"
    assert len(live.index) == len(store.chunk_ids(store.get("lessons")))
    after = _ids(retrieval, QUESTION, minilm)
    assert after == _ids(exact, QUESTION, minilm) and during[0] not in after
    assert _ids(retrieval, LATE, minilm, 1) == ["late"]
    assert live.exact_while_building == 3  # the queries after the switch went to HNSW
    assert len(made) == 1  # no second build


def test_a_failed_build_leaves_exact_search_answering(
    store: CollectionStore, minilm: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    _load(store, minilm)
    retrieval, gate, _made = _gated(store, fail=True)
    assert _ids(retrieval, QUESTION, minilm)[0] == "u3l13/Modularity - Sprites and Sprite Properties"
    gate.set()
    live = retrieval.wait_built("lessons", timeout=60)
    assert live.building is None and live.switches == 0
    assert live.index is not None and live.index.kind == "exact"
    assert "HNSW build of lessons failed" in caplog.text and "no room for the graph" in caplog.text
    assert _ids(retrieval, QUESTION, minilm)[0] == "u3l13/Modularity - Sprites and Sprite Properties"


def test_auto_keeps_small_collections_exact_without_a_build(store: CollectionStore, minilm: Embedder) -> None:
    _load(store, minilm)
    retrieval = Retrieval(store)
    assert _ids(retrieval, QUESTION, minilm)
    live = retrieval.wait_built("lessons", timeout=1)
    assert live.building is None and live.index is not None and live.index.kind == "exact"
    assert live.exact_while_building == 0 and live.switches == 0


def test_a_background_build_can_be_waited_for_with_a_timeout() -> None:
    from lib.retrieval.background import BackgroundBuild

    gate = threading.Event()
    index = GatedHnsw(4, gate)
    vectors = np.eye(4, dtype=np.float32)
    build = BackgroundBuild(index, np.arange(4, dtype=np.int64), vectors)
    assert build.wait(timeout=0.05) is False and not build.done
    gate.set()
    assert build.wait(timeout=60) and build.error is None and len(index) == 4


GEVENT_PROBE = """
from gevent import monkey

monkey.patch_all()
import json

import numpy as np

from lib.concurrency import gevent_patched
from lib.retrieval.background import BackgroundBuild
from lib.retrieval.index import HnswIndex

real_ident = monkey.get_original("_thread", "get_ident")
seen = {}


class Probe(HnswIndex):
    def add(self, keys, vectors):
        seen["thread"] = real_ident()
        super().add(keys, vectors)


vectors = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
build = BackgroundBuild(Probe(16), np.arange(2000, dtype=np.int64), vectors)
build.wait(120)
print(json.dumps({"patched": gevent_patched(), "done": build.done, "error": repr(build.error),
                  "other_thread": seen.get("thread") not in (None, real_ident()), "size": len(build.index)}))
"""


def test_under_gevent_the_build_runs_on_a_real_os_thread() -> None:
    """With ``threading`` patched a Thread is a greenlet on the hub; the build must not be one."""
    import json
    import subprocess
    import sys

    from tests.support.server import REPO

    out = subprocess.run(
        [sys.executable, "-c", GEVENT_PROBE],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"patched": True, "done": True, "error": "None", "other_thread": True, "size": 2000}
