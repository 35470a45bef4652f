"""Collections, documents and chunks in the database (SQLite or PostgreSQL, the same SQL).

Why the vectors live in the database and not in an index file: every worker and every replica reads
the same rows, so a document written through one replica is found through all of them (each rebuilds
its in-memory index from these rows, ``lib/retrieval/service.py``), and nothing but the database has
to be backed up or shared.

Re-ingest is cheap and idempotent: a document whose text hash is unchanged is left alone; otherwise
only chunks whose text is new are embedded (``content_sha256``), the others keep their rows and
vectors.  Every write moves the collection's ``generation`` on, in the same transaction.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lib.errors import InvalidRequestError
from lib.retrieval.chunking import Chunk, chunk_text
from lib.store.retrieval_schema import retrieval_chunks, retrieval_collections, retrieval_documents

if TYPE_CHECKING:
    import numpy as np

# numpy is imported where vectors are made: a worker that never uses collections never loads it
# (this module is imported at start by the routes for its errors).

#: Embeds texts with the collection's model; returns one vector per text.
Embed = Callable[[str, Sequence[str]], list[list[float]]]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class CollectionNotFoundError(InvalidRequestError):
    """No collection (or document) of that name (404)."""

    kind = "not_found"


class CollectionConflictError(InvalidRequestError):
    """A collection of that name exists with other settings (409)."""

    kind = "conflict"


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    name: str
    model: str
    dimensions: int | None
    chunk_tokens: int
    chunk_overlap: int
    generation: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IngestResult:
    doc_id: str
    chunks: int
    embedded: int  # chunks whose vectors were computed by this call (0 when nothing changed)
    unchanged: bool


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _bump(conn: sa.Connection, collection_id: str, **values: Any) -> None:
    conn.execute(
        retrieval_collections.update()
        .where(retrieval_collections.c.id == collection_id)
        .values(generation=retrieval_collections.c.generation + 1, **values)
    )


class CollectionStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, name: str) -> Collection:
        with self.engine.connect() as conn:
            row = conn.execute(
                retrieval_collections.select().where(retrieval_collections.c.name == name)
            ).first()
        if row is None:
            raise CollectionNotFoundError(f"no collection named {name!r}", field="collection")
        return Collection(**row._asdict())

    def generation(self, name: str) -> int | None:
        """The collection's write counter (None: it no longer exists); one indexed read per query."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(retrieval_collections.c.generation).where(retrieval_collections.c.name == name)
            ).scalar()

    def create(self, name: str, model: str, chunk_tokens: int, chunk_overlap: int) -> tuple[Collection, bool]:
        """The collection, and whether this call created it (the same settings again is not an error)."""
        if not NAME.match(name):
            raise InvalidRequestError(
                "name: 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit", field="name"
            )
        try:
            existing = self.get(name)
        except CollectionNotFoundError:
            existing = None
        if existing is not None:
            if (existing.model, existing.chunk_tokens, existing.chunk_overlap) != (
                model,
                chunk_tokens,
                chunk_overlap,
            ):
                raise CollectionConflictError(
                    f"collection {name!r} exists with other settings (model {existing.model!r}, "
                    f"chunk_tokens {existing.chunk_tokens}, chunk_overlap {existing.chunk_overlap})",
                    field="name",
                )
            return existing, False
        row: dict[str, Any] = {
            "id": secrets.token_hex(8),
            "name": name,
            "model": model,
            "dimensions": None,
            "chunk_tokens": chunk_tokens,
            "chunk_overlap": chunk_overlap,
            "generation": 0,
            "created_at": _now(),
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(retrieval_collections.insert().values(**row))
        except sa.exc.IntegrityError:  # created concurrently by another worker: same rules apply
            return self.create(name, model, chunk_tokens, chunk_overlap)
        return Collection(**row), True

    def delete(self, name: str) -> None:
        coll = self.get(name)
        with self.engine.begin() as conn:
            for table in (retrieval_chunks, retrieval_documents):
                conn.execute(table.delete().where(table.c.collection_id == coll.id))
            conn.execute(retrieval_collections.delete().where(retrieval_collections.c.id == coll.id))

    def upsert(
        self, coll: Collection, doc_id: str, text: str, metadata: dict[str, Any], embed: Embed
    ) -> IngestResult:
        for name, value in (("id", doc_id), ("text", text)):
            if "\x00" in value:  # PostgreSQL text cannot hold NUL; refuse it on every back end alike
                raise InvalidRequestError(f"{name} must not contain NUL characters", field=name)
        text_sha = _sha(text)
        meta_json = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
        docs, chunks_t = retrieval_documents, retrieval_chunks
        where_doc = (docs.c.collection_id == coll.id) & (docs.c.doc_id == doc_id)
        where_chunks = (chunks_t.c.collection_id == coll.id) & (chunks_t.c.doc_id == doc_id)
        with self.engine.connect() as conn:
            current = conn.execute(sa.select(docs.c.text_sha256, docs.c.metadata).where(where_doc)).first()
            old: dict[str, list[int]] = {}
            for r in conn.execute(sa.select(chunks_t.c.id, chunks_t.c.content_sha256).where(where_chunks)):
                old.setdefault(r.content_sha256, []).append(r.id)
        if current is not None and current.text_sha256 == text_sha and current.metadata == meta_json:
            return IngestResult(doc_id, sum(map(len, old.values())), 0, True)
        pieces = chunk_text(text, coll.chunk_tokens, coll.chunk_overlap)
        kept: list[tuple[int, Chunk]] = []  # same text as a stored chunk: its vector is reused
        fresh: list[Chunk] = []
        for piece in pieces:
            pool = old.get(piece.content_hash)
            if pool:
                kept.append((pool.pop(), piece))
            else:
                fresh.append(piece)
        vectors = self._embed(coll, embed, fresh)
        with self.engine.begin() as conn:
            stale = [i for ids in old.values() for i in ids]
            if stale:
                conn.execute(chunks_t.delete().where(chunks_t.c.id.in_(stale)))
            for row_id, piece in kept:  # offsets move when text before them changed
                conn.execute(
                    chunks_t.update()
                    .where(chunks_t.c.id == row_id)
                    .values(seq=piece.seq, start=piece.start, stop=piece.end)
                )
            if fresh:
                conn.execute(
                    chunks_t.insert(),
                    [
                        {
                            "collection_id": coll.id,
                            "doc_id": doc_id,
                            "seq": c.seq,
                            "start": c.start,
                            "stop": c.end,
                            "content_sha256": c.content_hash,
                            "text": c.text,
                            "embedding": v.tobytes(),
                        }
                        for c, v in zip(fresh, vectors, strict=True)
                    ],
                )
            values = {
                "metadata": meta_json,
                "text_sha256": text_sha,
                "length": len(text),
                "updated_at": _now(),
            }
            if current is None:
                conn.execute(docs.insert().values(collection_id=coll.id, doc_id=doc_id, **values))
            else:
                conn.execute(docs.update().where(where_doc).values(**values))
            dims = {"dimensions": int(vectors.shape[1])} if fresh and coll.dimensions is None else {}
            _bump(conn, coll.id, **dims)
        return IngestResult(doc_id, len(pieces), len(fresh), False)

    def _embed(self, coll: Collection, embed: Embed, fresh: Sequence[Chunk]) -> np.ndarray:
        import numpy as np

        if not fresh:
            return np.empty((0, coll.dimensions or 0), dtype=np.float32)
        raw = np.asarray(embed(coll.model, [c.text for c in fresh]), dtype=np.float32)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        matrix = raw / np.where(norms == 0, 1, norms)  # cosine by inner product, whatever the model
        if coll.dimensions is not None and matrix.shape[1] != coll.dimensions:
            raise InvalidRequestError(
                f"model {coll.model!r} returned {matrix.shape[1]} dimensions; "
                f"the collection has {coll.dimensions}",
                field="model",
            )
        return matrix.astype("<f4")

    def delete_document(self, coll: Collection, doc_id: str) -> None:
        if "\x00" in doc_id:
            raise CollectionNotFoundError(f"no document {doc_id!r} in {coll.name!r}", field="id")
        docs, chunks_t = retrieval_documents, retrieval_chunks
        with self.engine.begin() as conn:
            gone = conn.execute(
                docs.delete().where((docs.c.collection_id == coll.id) & (docs.c.doc_id == doc_id))
            ).rowcount
            if not gone:
                raise CollectionNotFoundError(f"no document {doc_id!r} in {coll.name!r}", field="id")
            conn.execute(
                chunks_t.delete().where((chunks_t.c.collection_id == coll.id) & (chunks_t.c.doc_id == doc_id))
            )
            _bump(conn, coll.id)

    def chunk_ids(self, coll: Collection) -> set[int]:
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    sa.select(retrieval_chunks.c.id).where(retrieval_chunks.c.collection_id == coll.id)
                )
                .scalars()
                .all()
            )

    def chunk_vectors(self, ids: Sequence[int]) -> tuple[list[int], list[str], np.ndarray]:
        """Row ids, document ids and vectors of the given chunks (batched, for index builds)."""
        import numpy as np

        keys: list[int] = []
        doc_ids: list[str] = []
        blobs: list[bytes] = []
        c = retrieval_chunks.c
        with self.engine.connect() as conn:
            for start in range(0, len(ids), 5000):
                batch = list(ids[start : start + 5000])
                for row in conn.execute(sa.select(c.id, c.doc_id, c.embedding).where(c.id.in_(batch))):
                    keys.append(row.id)
                    doc_ids.append(row.doc_id)
                    blobs.append(row.embedding)
        matrix = (
            np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(keys), -1) if keys else np.empty((0, 0))
        )
        return keys, doc_ids, matrix.astype(np.float32)

    def document_metadata(self, coll: Collection) -> dict[str, dict[str, Any]]:
        d = retrieval_documents.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(d.doc_id, d.metadata).where(d.collection_id == coll.id))
            return {r.doc_id: json.loads(r.metadata) for r in rows}

    def document_text(self, coll: Collection, doc_id: str) -> str:
        """A document's text stitched back from its chunks (overlapping windows that cover it all)."""
        c = retrieval_chunks.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.start, c.stop, c.text)
                .where((c.collection_id == coll.id) & (c.doc_id == doc_id))
                .order_by(c.start)
            ).all()
        text = ""
        for row in rows:
            if row.stop > len(text):
                text += row.text[len(text) - row.start :]
        return text

    def chunks(self, ids: Sequence[int]) -> dict[int, Any]:
        """Row id -> chunk row (document id, offsets, text) for the results of a query."""
        c = retrieval_chunks.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(c.id, c.doc_id, c.seq, c.start, c.stop, c.text).where(c.id.in_(list(ids)))
            )
            return {r.id: r for r in rows}
