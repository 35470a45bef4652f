"""Queries over collections: the worker's in-memory indexes kept in step with the database.

Each worker holds one ``LiveIndex`` per collection it has queried.  Before a query it reads the
collection's ``generation`` (one indexed row); when another worker or replica has written since,
it diffs the chunk row ids (chunk rows never change their vectors) and adds or removes only the
difference, so a write costs the readers the new rows, not a rebuild.  Adding runs on an OS thread
under gevent.  A collection always loads into an exact index first; when it is (or grows) past
``HNSW_THRESHOLD`` an HNSW index is built from it on a background OS thread
(``lib/retrieval/background.py``) while queries are answered exactly, and the next query after the
build switches to it, so a cold worker never waits minutes for its first answer.

Filters (``{"field": value}`` or ``{"field": [v1, v2]}`` on document metadata, all must match) pick
the allowed chunks first and then rank only those exactly, so a filter never loses results the way
post-filtering an approximate top-k can.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lib.concurrency import OSThreadRunner
from lib.errors import InvalidRequestError
from lib.retrieval.background import BackgroundBuild
from lib.retrieval.index import (
    ExactIndex,
    IndexKind,
    VectorIndex,
    choose_kind,
    dot_scores,
    new_index,
    top_k,
)
from lib.retrieval.store import Collection, CollectionNotFoundError, CollectionStore, Embed

Filter = Mapping[str, Any]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hit:
    doc_id: str
    chunk: int  # position of the chunk in its document
    start: int
    end: int
    score: float
    text: str
    metadata: dict[str, Any]


@dataclass
class LiveIndex:
    collection: Collection
    index: VectorIndex | None = None
    doc_of: dict[int, str] = field(default_factory=dict)
    metadata: dict[str, dict[str, Any]] = field(default_factory=dict)
    generation: int = -1
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: The HNSW index being built in the background while ``index`` (exact) answers.
    building: BackgroundBuild | None = None
    #: Queries answered by exact search while a build ran, and builds switched to: how the cold
    #: start is observed (tests, operators) without timing anything.
    exact_while_building: int = 0
    switches: int = 0


def matches(metadata: Mapping[str, Any], where: Filter) -> bool:
    for key, wanted in where.items():
        value = metadata.get(key)
        if isinstance(wanted, list):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


def check_filter(where: Any) -> Filter:
    """A filter is an object of scalar values or lists of scalars; anything else is a 400 on ``filter``."""
    if where is None:
        return {}
    if not isinstance(where, dict):
        raise InvalidRequestError("filter must be an object of metadata field -> value", field="filter")
    for key, value in where.items():
        values = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, str | int | float | bool) for v in values):
            raise InvalidRequestError(f"filter.{key}: a scalar or a list of scalars", field="filter")
    return where


class Retrieval:
    """One per app.  ``embed(model, texts)`` is the gateway's embedding call with the request's deadline."""

    def __init__(
        self,
        store: CollectionStore,
        index_kind: str = "auto",
        runner: OSThreadRunner | None = None,
        make_index: Callable[[IndexKind, int], VectorIndex] = new_index,
    ) -> None:
        self.store = store
        self.index_kind = index_kind
        self.make_index = make_index
        #: Index builds run on an OS thread under gevent: an HNSW insert of many chunks is seconds of
        #: native work that would otherwise stall every request of the worker (``lib/concurrency.py``).
        self.runner = runner or OSThreadRunner(1, nice=5)
        self._live: dict[str, LiveIndex] = {}
        self._lock = threading.Lock()

    def forget(self, name: str) -> None:
        with self._lock:
            self._live.pop(name, None)

    def live(self, name: str) -> LiveIndex:
        """The collection's index, brought up to the database's generation."""
        generation = self.store.generation(name)
        if generation is None:
            self.forget(name)
            raise CollectionNotFoundError(f"no collection named {name!r}", field="collection")
        with self._lock:
            live = self._live.get(name)
            if live is None:
                live = self._live[name] = LiveIndex(self.store.get(name))
        with live.lock:
            if live.generation != generation:
                self._refresh(live)
                live.generation = generation
            if live.building is not None and live.building.done:
                self._switch(live)
        return live

    def wait_built(self, name: str, timeout: float | None = None) -> LiveIndex:
        """The collection's index once any background build has ended (the bench measures HNSW)."""
        build = self.live(name).building
        if build is not None:
            build.wait(timeout)
        return self.live(name)

    def _refresh(self, live: LiveIndex) -> None:
        coll = live.collection = self.store.get(live.collection.name)
        wanted = self.store.chunk_ids(coll)
        have = set(live.doc_of)
        if live.index is None and coll.dimensions is not None:
            live.index, live.doc_of = ExactIndex(coll.dimensions), {}
        gone = have - wanted
        if gone and live.index is not None:
            live.index.remove(np.fromiter(gone, dtype=np.int64))
            for key in gone:
                live.doc_of.pop(key, None)
        keys, doc_ids, matrix = self.store.chunk_vectors(sorted(wanted - have))
        if keys and live.index is not None:
            self.runner.call(live.index.add, np.asarray(keys, dtype=np.int64), matrix)
            live.doc_of.update(zip(keys, doc_ids, strict=True))
        live.metadata = self.store.document_metadata(coll)
        index = live.index
        if (
            isinstance(index, ExactIndex)
            and live.building is None
            and choose_kind(len(index), self.index_kind) == "hnsw"
        ):
            snapshot_keys, snapshot = index.contents()
            live.building = BackgroundBuild(
                self.make_index("hnsw", index.dimensions), snapshot_keys, snapshot
            )

    def _switch(self, live: LiveIndex) -> None:
        """Adopt the finished build, replaying the writes the exact index took while it ran."""
        build, live.building = live.building, None
        assert build is not None and isinstance(live.index, ExactIndex)
        if build.error is not None:
            log.warning(
                "HNSW build of %s failed, exact search continues: %r", live.collection.name, build.error
            )
            return
        keys, matrix = live.index.contents()
        added = ~np.isin(keys, build.keys)
        self.runner.call(build.index.add, keys[added], matrix[added])
        build.index.remove(build.keys[~np.isin(build.keys, keys)])
        live.index = build.index
        live.switches += 1

    def query(self, name: str, vector: Sequence[float], k: int, where: Filter | None = None) -> list[Hit]:
        live = self.live(name)
        index = live.index
        if index is None or not len(index):
            return []
        if live.building is not None:
            live.exact_while_building += 1
        q = np.asarray(vector, dtype=np.float32)
        q = q / (np.linalg.norm(q) or 1.0)
        if where:
            allowed = np.fromiter(
                (key for key, doc in live.doc_of.items() if matches(live.metadata.get(doc, {}), where)),
                dtype=np.int64,
            )
            if not len(allowed):
                return []
            keys, scores = top_k(allowed, dot_scores(index.vectors(allowed), q), k)
        else:
            keys, scores = index.search(q, k)
        rows = self.store.chunks([int(key) for key in keys])
        hits = []
        for key, score in zip(keys.tolist(), scores.tolist(), strict=True):
            row = rows.get(key)
            if row is None:  # deleted since this worker's refresh; the next query drops it
                continue
            meta = live.metadata.get(row.doc_id, {})
            hits.append(Hit(row.doc_id, row.seq, row.start, row.stop, round(score, 6), row.text, meta))
        return hits

    def query_text(
        self, name: str, text: str, k: int, embed: Embed, where: Filter | None = None
    ) -> list[Hit]:
        """Embed ``text`` with the collection's own model, then ``query``."""
        model = self.live(name).collection.model
        return self.query(name, embed(model, [text])[0], k, where)


def exact_recall(index: VectorIndex, reference: ExactIndex, queries: np.ndarray, k: int) -> float:
    """Mean share of the exact top-k that ``index`` returns (the bench's recall@k)."""
    found = 0
    for q in queries:
        want = set(reference.search(q, k)[0].tolist())
        found += len(want & set(index.search(q, k)[0].tolist()))
    return found / (len(queries) * k)


def hits_json(hits: Sequence[Hit]) -> list[dict[str, Any]]:
    return [
        {
            "document_id": h.doc_id,
            "chunk": h.chunk,
            "start": h.start,
            "end": h.end,
            "score": h.score,
            "text": h.text,
            "metadata": h.metadata,
        }
        for h in hits
    ]
