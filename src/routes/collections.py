"""Retrieval collections: create, add documents, query, delete (``lib/retrieval``).

Writes need the ``admin`` scope and queries the ``chat`` scope (``src/scopes.py``).  Documents are
embedded through the gateway with the collection's model, so an upstream failure maps to the same
statuses as ``/embeddings``.  One ``Retrieval`` per app, on the app's store (``src/accounts.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, g, jsonify
from pydantic import BaseModel, ConfigDict, Field

from lib.errors import AIProxyError, InvalidRequestError
from lib.providers.base import Message, TextPart
from lib.retrieval.chunking import DEFAULT_CHUNK_OVERLAP, DEFAULT_CHUNK_TOKENS
from lib.retrieval.examples import nearest_examples
from lib.retrieval.grounding import citations, grounded_messages
from lib.retrieval.store import CollectionConflictError, CollectionNotFoundError, CollectionStore
from src.accounts import ACCOUNTS_EXTENSION
from src.api import UPSTREAM_ERRORS, documented, no_body, parse_body, services
from src.auth import require_auth
from src.errors import error_response
from src.schemas import RetrievalIn

if TYPE_CHECKING:
    from lib.retrieval.service import Retrieval

# lib.retrieval.service (numpy, the vector indexes) is imported where a collection is first used:
# a worker that never uses collections never loads it.

bp = Blueprint("collections", __name__)
log = logging.getLogger("aiproxy.retrieval")
RETRIEVAL_EXTENSION = "aiproxy.retrieval"
Scalar = str | int | float | bool | None


class RetrievalStoreDownError(AIProxyError):
    """The store cannot be reached: 503 with Retry-After, on the collections routes and on chat or
    assessment requests that name a collection, never a 500."""

    kind = "database_unavailable"


@contextmanager
def _store_errors() -> Iterator[None]:
    try:
        yield
    except sa.exc.DBAPIError as exc:
        log.warning("retrieval: database error", extra={"error": type(exc.orig).__name__})
        raise RetrievalStoreDownError(
            "the database is unavailable; try again shortly", retry_after=5
        ) from None


@bp.errorhandler(sa.exc.DBAPIError)
def _store_down(exc: sa.exc.DBAPIError) -> Response:
    log.warning("retrieval: database error", extra={"error": type(exc.orig).__name__})
    return error_response(
        503, "the database is unavailable; try again shortly", "database_unavailable", retry_after=5
    )


def retrieval() -> Retrieval:
    """The app's ``Retrieval`` (its per-worker indexes), made on first use."""
    from lib.retrieval.service import Retrieval

    found: Retrieval | None = current_app.extensions.get(RETRIEVAL_EXTENSION)
    if found is None:
        store = current_app.extensions[ACCOUNTS_EXTENSION].store
        found = current_app.extensions.setdefault(
            RETRIEVAL_EXTENSION, Retrieval(CollectionStore(store.engine))
        )
    return found


def embed_with_gateway(model: str, texts: Sequence[str]) -> list[list[float]]:
    """The request's embedding call: the caller's deadline, key checks and ledger apply."""
    return services().gateway.embed(model, list(texts), deadline=g.deadline).vectors


def _search_text(messages: Sequence[Message]) -> str:
    """What grounded chat searches with: the text of the last user turn."""
    for message in reversed(messages):
        if message.role == "user":
            return "\n".join(p.text for p in message.parts if isinstance(p, TextPart)).strip()
    return ""


def ground(
    spec: RetrievalIn | None, messages: list[Message]
) -> tuple[list[Message], list[dict[str, Any]] | None]:
    """Grounded chat (``retrieval`` on /chat and /v1/chat/completions): the messages with the
    spotlighted context turn, and the citations to return; unchanged (and None) without ``retrieval``."""
    if spec is None:
        return messages, None
    query_text = _search_text(messages)
    if not query_text:
        raise InvalidRequestError(
            "retrieval needs a user message with text to search with", field="retrieval"
        )
    from lib.retrieval.service import check_filter

    where = check_filter(spec.filter)
    try:
        with _store_errors():
            hits = retrieval().query_text(spec.collection, query_text, spec.k, embed_with_gateway, where)
    except CollectionNotFoundError as exc:
        raise InvalidRequestError(exc.message, field="retrieval.collection") from None
    return grounded_messages(messages, hits), citations(hits)


def examples_by_similarity(fields: dict[str, Any]) -> dict[str, Any]:
    """``/assessment``'s ``examples-collection``: the ``examples-count`` (default 3) graded examples
    nearest to the program replace ``examples``; the pipeline then checks them like sent examples."""
    name = fields.get("examples-collection")
    code = fields.get("code")
    if not name or not isinstance(code, str):
        return fields
    count = fields.get("examples-count", 3)
    try:
        k = int(count)
    except (TypeError, ValueError):
        raise InvalidRequestError("examples-count must be an integer", field="examples-count") from None
    try:
        with _store_errors():
            pairs = nearest_examples(retrieval(), str(name), code, k, embed_with_gateway)
    except CollectionNotFoundError as exc:
        raise InvalidRequestError(exc.message, field="examples-collection") from None
    return {**fields, "examples": [list(pair) for pair in pairs]}


class CollectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="1-100 letters, digits, `.`, `_`, `-`.", min_length=1, max_length=100)
    model: str | None = Field(
        None, description="Embedding model; default the configured one (`local` offline)."
    )
    chunk_tokens: int = Field(DEFAULT_CHUNK_TOKENS, ge=16, le=1000, description="cl100k tokens per chunk.")
    chunk_overlap: int = Field(
        DEFAULT_CHUNK_OVERLAP, ge=0, le=500, description="Tokens shared by neighbours."
    )


class CollectionOut(BaseModel):
    name: str
    model: str
    dimensions: int | None
    chunk_tokens: int
    chunk_overlap: int
    created: bool = Field(description="False when the collection already existed with these settings.")


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(
        description="The document's id in the collection (re-sending it replaces it).",
        min_length=1,
        max_length=200,
    )
    text: str = Field(description="The document text (chunked, embedded).", min_length=1)
    metadata: dict[str, Scalar] = Field(default_factory=dict, description="Scalar fields to filter on.")


class DocumentOut(BaseModel):
    id: str
    chunks: int
    embedded: int = Field(description="Chunks embedded by this call (0 when the document was unchanged).")
    unchanged: bool


class QueryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str = Field(min_length=1, description="Text to search for (embedded with the collection's model).")
    k: int = Field(5, ge=1, le=50, description="How many chunks to return.")
    filter: dict[str, Scalar | list[Scalar]] | None = Field(
        None, description="Document metadata that must match: `{field: value}` or `{field: [values]}`."
    )


class HitOut(BaseModel):
    document_id: str
    chunk: int = Field(description="Position of the chunk in its document (0-based).")
    start: int = Field(description="Character offset of the chunk in the document text (inclusive).")
    end: int = Field(description="Character offset (exclusive): the chunk is `text[start:end]`.")
    score: float = Field(description="Cosine similarity.")
    text: str
    metadata: dict[str, Any]


class QueryOut(BaseModel):
    collection: str
    model: str
    data: list[HitOut]


class DeletedOut(BaseModel):
    deleted: str


def _conflict(exc: CollectionConflictError) -> Response:
    return error_response(409, exc.message, exc.kind, field=exc.field)


@bp.post("/collections")
@require_auth
@documented(
    "Create a retrieval collection (idempotent for the same settings)",
    body=CollectionIn,
    responses={200: CollectionOut, 201: CollectionOut},
    errors=(400, 401, 403, 409, 503),
    tags=("retrieval",),
    description="201 created, 200 already there with the same settings, 409 there with other settings.",
)
def create_collection() -> Response | tuple[Response, int]:
    body = parse_body(CollectionIn)
    if body.chunk_overlap >= body.chunk_tokens:
        raise InvalidRequestError("chunk_overlap must be smaller than chunk_tokens", field="chunk_overlap")
    model = body.model or services().gateway.default_model("embedding")
    services().gateway.resolve(model)  # an unknown model is a 400 now, not at the first document
    try:
        coll, created = retrieval().store.create(body.name, model, body.chunk_tokens, body.chunk_overlap)
    except CollectionConflictError as exc:
        return _conflict(exc)
    out = {k: getattr(coll, k) for k in ("name", "model", "dimensions", "chunk_tokens", "chunk_overlap")}
    return jsonify({**out, "created": created}), 201 if created else 200


@bp.delete("/collections/<name>")
@require_auth
@documented(
    "Delete a collection and its documents",
    responses={200: DeletedOut},
    errors=(400, 401, 403, 404, 503),
    tags=("retrieval",),
)
def delete_collection(name: str) -> Response:
    no_body()
    svc = retrieval()
    svc.store.delete(name)
    svc.forget(name)
    return jsonify({"deleted": name})


@bp.post("/collections/<name>/documents")
@require_auth
@documented(
    "Add or replace a document (chunked, only changed chunks embedded)",
    body=DocumentIn,
    responses={200: DocumentOut},
    errors=(*UPSTREAM_ERRORS, 403, 404),
    tags=("retrieval",),
)
def add_document(name: str) -> Response:
    body = parse_body(DocumentIn)
    svc = retrieval()
    coll = svc.store.get(name)
    g.model = coll.model
    result = svc.store.upsert(coll, body.id, body.text, dict(body.metadata), embed_with_gateway)
    return jsonify(
        {
            "id": result.doc_id,
            "chunks": result.chunks,
            "embedded": result.embedded,
            "unchanged": result.unchanged,
        }
    )


@bp.delete("/collections/<name>/documents/<path:doc_id>")
@require_auth
@documented(
    "Delete a document", responses={200: DeletedOut}, errors=(400, 401, 403, 404, 503), tags=("retrieval",)
)
def delete_document(name: str, doc_id: str) -> Response:
    no_body()
    svc = retrieval()
    svc.store.delete_document(svc.store.get(name), doc_id)
    return jsonify({"deleted": doc_id})


@bp.post("/collections/<name>/query")
@require_auth
@documented(
    "The chunks nearest to a query",
    body=QueryIn,
    responses={200: QueryOut},
    errors=(*UPSTREAM_ERRORS, 403, 404),
    tags=("retrieval",),
)
def query(name: str) -> Response:
    from lib.retrieval.service import check_filter, hits_json

    body = parse_body(QueryIn)
    svc = retrieval()
    where = check_filter(body.filter)
    model = svc.live(name).collection.model
    g.model = model
    hits = svc.query_text(name, body.query, body.k, embed_with_gateway, where)
    return jsonify({"collection": name, "model": model, "data": hits_json(hits)})
