"""Tables of retrieval collections, their documents and chunks (issue 16), on the shared ``metadata``.

Kept apart from the other features' tables so each feature owns its own; built by migration ``0003``.
A chunk row never changes: a document whose text changes gets new rows for the chunks whose text
changed (their ``content_hash`` differs) and keeps the others, so an index can follow the table by
row id alone.  ``generation`` on the collection moves on every write, which is how every worker and
replica notices that its in-memory index is stale (``lib/retrieval/service.py``).
Embeddings are float32 little-endian bytes (``numpy.tobytes``), portable between SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa

from lib.store.schema import metadata

retrieval_collections = sa.Table(
    "retrieval_collections",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(100), nullable=False, unique=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("dimensions", sa.Integer, nullable=True),
    sa.Column("chunk_tokens", sa.Integer, nullable=False),
    sa.Column("chunk_overlap", sa.Integer, nullable=False),
    sa.Column("generation", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", sa.DateTime, nullable=False),
)

retrieval_documents = sa.Table(
    "retrieval_documents",
    metadata,
    sa.Column("collection_id", sa.String(32), primary_key=True),
    sa.Column("doc_id", sa.String(200), primary_key=True),
    sa.Column("metadata", sa.Text, nullable=False, server_default="{}"),
    sa.Column("text_sha256", sa.String(64), nullable=False),
    sa.Column("length", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

retrieval_chunks = sa.Table(
    "retrieval_chunks",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("collection_id", sa.String(32), nullable=False),
    sa.Column("doc_id", sa.String(200), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("start", sa.Integer, nullable=False),
    sa.Column("stop", sa.Integer, nullable=False),
    sa.Column("content_sha256", sa.String(64), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("embedding", sa.LargeBinary, nullable=False),
    sa.Index("ix_retrieval_chunks_doc", "collection_id", "doc_id"),
)
