"""Queries over collections: the worker's in-memory indexes kept in step with the database.

Each worker holds one ``LiveIndex`` per collection it has queried.  Before a query it reads the
collection's ``generation`` (one indexed row); when another worker or replica has written since,
it diffs the chunk row ids (chunk rows never change their vectors) and adds or removes only the
difference, so a write costs the readers the new rows, not a rebuild.  Adding runs on an OS thread
under gevent (the first load of a large collection is seconds of native work).  An exact index that grows past
``HNSW_THRESHOLD`` is rebuilt once as HNSW.

Filters (``{"field": value}`` or ``{"field": [v1, v2]}`` on document metadata, all must match) pick
the allowed chunks first and then rank only those exactly, so a filter never loses results the way
post-filtering an approximate top-k can.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lib.concurrency import OSThreadRunner
from lib.errors import InvalidRequestError
from lib.retrieval.index import (
    HNSW_THRESHOLD,
    ExactIndex,
    VectorIndex,
    choose_kind,
    dot_scores,
    new_index,
    top_k,
)
from lib.retrieval.store import Collection, CollectionNotFoundError, CollectionStore, Embed

Filter = Mapping[str, Any]


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
        self, store: CollectionStore, index_kind: str = "auto", runner: OSThreadRunner | None = None
    ) -> None:
        self.store = store
        self.index_kind = index_kind
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
        return live

    def _refresh(self, live: LiveIndex) -> None:
        coll = live.collection = self.store.get(live.collection.name)
        wanted = self.store.chunk_ids(coll)
        have = set(live.doc_of)
        if live.index is not None and coll.dimensions is not None:
            grow = len(wanted) >= HNSW_THRESHOLD and live.index.kind == "exact" and self.index_kind == "auto"
            if grow:
                live.index, have = None, set()
        if live.index is None and coll.dimensions is not None:
            live.index = new_index(choose_kind(len(wanted), self.index_kind), coll.dimensions)
            live.doc_of = {}
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

    def query(self, name: str, vector: Sequence[float], k: int, where: Filter | None = None) -> list[Hit]:
        live = self.live(name)
        index = live.index
        if index is None or not len(index):
            return []
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
