"""Retrieval (issue 16): collections of documents chunked and embedded into the store, queried through
a per-worker vector index, and used to ground chat answers with citations.

- ``chunking``: token windows with overlap and exact character offsets.
- ``index``: exact (numpy) and HNSW (usearch) indexes behind one interface.
- ``store``: collections, documents and chunk vectors in SQLite or PostgreSQL.
- ``service``: the in-memory indexes kept in step with the store, queries and filters.
- ``grounding``: the spotlighted context block and citations for grounded chat.
"""
