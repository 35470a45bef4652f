"""Nearest-neighbour indexes over L2-normalised float32 vectors, behind one interface.

Two kinds, chosen per collection by size (``choose_kind``):

- ``ExactIndex`` (numpy): one matrix-vector product per query.  Perfect recall; cost grows with the
  collection (100k x 384 float32 is 150 MB read per query, tens of ms on this machine), so it serves
  small collections and every filtered query.
- ``HnswIndex`` (``usearch``, a wheel with no server): a graph index whose query cost grows with the
  log of the collection; ``expansion_search`` trades speed for recall (the bench measures recall@10
  against ``ExactIndex``: at 100k x 384, 96 gave 0.80 and the default 320 gives 0.97 at 8 ms p50).

Why not sqlite-vec: this Python's ``sqlite3`` is built without ``enable_load_extension``, so the
extension cannot be loaded.  Why not pgvector: Debian bookworm has no ``postgresql-15-pgvector``.
Vectors are therefore stored in the database (SQLite or PostgreSQL, ``lib/retrieval/store.py``) and
the index lives in each worker's memory, rebuilt incrementally from the store
(``lib/retrieval/service.py``).  Keys are the chunks' row ids.
"""

from __future__ import annotations

from typing import Literal, Protocol

import numpy as np
import numpy.typing as npt

Keys = npt.NDArray[np.int64]
Matrix = npt.NDArray[np.float32]
IndexKind = Literal["exact", "hnsw"]
#: Below this many vectors exact search is both fast (a few ms) and perfect.
HNSW_THRESHOLD = 20_000


def choose_kind(size: int, setting: str = "auto") -> IndexKind:
    """``setting`` is ``auto``, ``exact`` or ``hnsw``; ``auto`` picks by ``size``."""
    if setting in ("exact", "hnsw"):
        return setting  # type: ignore[return-value]
    return "hnsw" if size >= HNSW_THRESHOLD else "exact"


def dot_scores(matrix: Matrix, vector: Matrix) -> npt.NDArray[np.float32]:
    """``matrix @ vector`` on this thread.  Not BLAS: a multi-threaded BLAS call wakes its helper
    threads on every query, and on a busy machine that wait (a scheduler time slice, measured at 15 ms
    for a 2,000 x 384 product) costs far more than the arithmetic (0.2 ms with ``einsum``)."""
    return np.einsum("ij,j->i", matrix, vector)


def top_k(keys: Keys, scores: npt.NDArray[np.float32], k: int) -> tuple[Keys, npt.NDArray[np.float32]]:
    """The ``k`` highest scores, best first."""
    if len(scores) > k:
        part = np.argpartition(-scores, k - 1)[:k]
        keys, scores = keys[part], scores[part]
    order = np.argsort(-scores, kind="stable")
    return keys[order], scores[order]


class VectorIndex(Protocol):
    kind: IndexKind
    dimensions: int

    def add(self, keys: Keys, vectors: Matrix) -> None: ...
    def remove(self, keys: Keys) -> None: ...
    def search(self, vector: Matrix, k: int) -> tuple[Keys, npt.NDArray[np.float32]]: ...
    def vectors(self, keys: Keys) -> Matrix: ...
    def __len__(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...


class ExactIndex:
    kind: IndexKind = "exact"

    def __init__(self, dimensions: int) -> None:
        self.dimensions = dimensions
        self._keys: Keys = np.empty(0, dtype=np.int64)
        self._matrix: Matrix = np.empty((0, dimensions), dtype=np.float32)
        self._where: dict[int, int] = {}

    def add(self, keys: Keys, vectors: Matrix) -> None:
        self._keys = np.concatenate([self._keys, keys.astype(np.int64)])
        self._matrix = np.vstack([self._matrix, vectors.astype(np.float32)])
        self._where = {int(key): i for i, key in enumerate(self._keys)}

    def remove(self, keys: Keys) -> None:
        keep = ~np.isin(self._keys, keys)
        self._keys, self._matrix = self._keys[keep], self._matrix[keep]
        self._where = {int(key): i for i, key in enumerate(self._keys)}

    def search(self, vector: Matrix, k: int) -> tuple[Keys, npt.NDArray[np.float32]]:
        if not len(self._keys):
            return self._keys, np.empty(0, dtype=np.float32)
        return top_k(self._keys, dot_scores(self._matrix, vector), k)

    def vectors(self, keys: Keys) -> Matrix:
        return self._matrix[[self._where[int(key)] for key in keys]]

    def contents(self) -> tuple[Keys, Matrix]:
        """Every key and its vector.  ``add`` and ``remove`` replace these arrays rather than write
        into them, so the pair stays a consistent snapshot for a background build to read."""
        return self._keys, self._matrix

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def memory_bytes(self) -> int:
        return int(self._matrix.nbytes + self._keys.nbytes)


class HnswIndex:
    kind: IndexKind = "hnsw"

    def __init__(self, dimensions: int, *, connectivity: int = 16, expansion_search: int = 320) -> None:
        from usearch.index import Index

        self.dimensions = dimensions
        self._index = Index(
            ndim=dimensions,
            metric="ip",
            dtype="f32",
            connectivity=connectivity,
            expansion_add=128,
            expansion_search=expansion_search,
        )

    @property
    def expansion_search(self) -> int:
        """Candidates kept while searching: more is slower and finds more of the true top-k."""
        return int(self._index.expansion_search)

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        self._index.expansion_search = value  # type: ignore[misc]  # settable, typed read-only

    def add(self, keys: Keys, vectors: Matrix) -> None:
        if len(keys):
            self._index.add(keys.astype(np.uint64), vectors.astype(np.float32), threads=0)

    def remove(self, keys: Keys) -> None:
        if len(keys):
            self._index.remove(keys.astype(np.uint64))

    def search(self, vector: Matrix, k: int) -> tuple[Keys, npt.NDArray[np.float32]]:
        if not len(self._index):
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        found = self._index.search(vector.astype(np.float32), k)
        # inner-product distance is 1 - dot; the score reported is the dot (cosine for unit vectors)
        return found.keys.astype(np.int64), (1.0 - found.distances).astype(np.float32)

    def vectors(self, keys: Keys) -> Matrix:
        got = self._index.get(keys.astype(np.uint64))
        return np.asarray(got, dtype=np.float32).reshape(len(keys), self.dimensions)

    def __len__(self) -> int:
        return len(self._index)

    @property
    def memory_bytes(self) -> int:
        return int(self._index.memory_usage)


def new_index(kind: IndexKind, dimensions: int) -> VectorIndex:
    return HnswIndex(dimensions) if kind == "hnsw" else ExactIndex(dimensions)
