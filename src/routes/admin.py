"""Admin routes (scope ``admin``; the root key has every scope): virtual keys and usage.

``/admin/keys`` is the HTTP twin of ``bin/aiproxy-admin keys``: both validate with
``lib.keys.KeySpec`` and write through ``lib.keys.KeyRepository``, so they cannot drift apart.
A key's plaintext appears in exactly one response: the one that created or rotated it.
``GET /usage`` is the twin of ``bin/aiproxy-admin usage`` (``lib.ledger.usage_report``).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time
from typing import Literal

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.datastructures import MultiDict

from lib.errors import AIProxyError, InvalidRequestError
from lib.keys import KeyRecord, KeyRepository, KeySpec
from lib.ledger import usage_report
from src.accounts import ACCOUNTS_EXTENSION, Accounts
from src.api import documented, no_body, parse_body
from src.auth import require_auth
from src.errors import error_response

bp = Blueprint("admin", __name__)
log = logging.getLogger("aiproxy.admin")


class KeysDisabledError(AIProxyError):
    """Virtual keys need ``KEY_HASH_SECRET`` (503: a deployment setting, not the caller's fault)."""

    kind = "keys_disabled"


class KeyOut(BaseModel):
    id: str
    name: str
    owner: str
    key_prefix: str = Field(description="The first characters of the key, to recognise it.")
    scopes: list[str]
    models: list[str]
    tier: str
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    monthly_budget_usd: float | None
    expires_at: str | None
    created_at: str
    updated_at: str
    revoked_at: str | None
    status: Literal["active", "expired", "revoked"]


class KeyCreatedOut(KeyOut):
    key: str = Field(description="The key itself. Shown only in this response: store it now.")


class KeyListOut(BaseModel):
    keys: list[KeyOut]


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: Literal["key", "model", "day"] = Field("key", description="Group rows by key, model or day (UTC).")
    since: date | datetime | None = Field(None, description="From this UTC date or time (inclusive).")
    until: date | datetime | None = Field(None, description="Before this UTC date or time (exclusive).")
    key: str | None = Field(None, max_length=64, description="Only this key id (root, anonymous, key_...).")


class UsageRow(BaseModel):
    key: str | None = None
    name: str | None = None
    model: str | None = None
    day: str | None = None
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None = Field(description="List-price estimate; null when no call had a known price.")


class UsageOut(BaseModel):
    by: str
    rows: list[UsageRow]


@bp.errorhandler(sa.exc.DBAPIError)
def _database_unavailable(exc: sa.exc.DBAPIError) -> Response:
    """The database cannot be reached (or refused the statement): 503, never a 500 with a traceback.
    Serving is unaffected (keys come from the cache, the ledger keeps its rows); only admin waits."""
    log.warning("admin: database error", extra={"error": type(exc.orig).__name__})
    return error_response(
        503, "the database is unavailable; try again shortly", "database_unavailable", retry_after=5
    )


def _accounts() -> Accounts:
    accounts: Accounts = current_app.extensions[ACCOUNTS_EXTENSION]
    return accounts


def _repo() -> KeyRepository:
    repo = _accounts().repo
    if repo is None:
        raise KeysDisabledError("virtual keys are off: set KEY_HASH_SECRET (the same on every replica)")
    return repo


def _created(record: KeyRecord, plaintext: str, status: int) -> Response:
    resp = jsonify({**record.public(), "key": plaintext})
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.get("/admin/keys")
@require_auth
@documented(
    "List virtual keys (never the keys themselves)",
    responses={200: KeyListOut},
    errors=(403, 503),
    tags=("admin",),
)
def list_keys() -> Response:
    return jsonify({"keys": [r.public() for r in _repo().all()]})


@bp.post("/admin/keys")
@require_auth
@documented(
    "Create a virtual key; the response carries the key once",
    body=KeySpec,
    responses={201: KeyCreatedOut},
    errors=(403, 503),
    tags=("admin",),
)
def create_key() -> Response:
    spec = parse_body(KeySpec)
    record, plaintext = _repo().create(spec)
    return _created(record, plaintext, 201)


@bp.get("/admin/keys/<key_id>")
@require_auth
@documented("One virtual key", responses={200: KeyOut}, errors=(403, 404, 503), tags=("admin",))
def get_key(key_id: str) -> Response:
    return jsonify(_repo().get(key_id).public())


@bp.post("/admin/keys/<key_id>/revoke")
@require_auth
@documented(
    "Revoke a key (every replica refuses it within KEY_CACHE_REFRESH_SECONDS)",
    responses={200: KeyOut},
    errors=(400, 403, 404, 503),
    tags=("admin",),
)
def revoke_key(key_id: str) -> Response:
    no_body()
    return jsonify(_repo().revoke(key_id).public())


@bp.post("/admin/keys/<key_id>/rotate")
@require_auth
@documented(
    "Give a key a new secret (same id, limits and history); the old secret stops working",
    responses={200: KeyCreatedOut},
    errors=(400, 403, 404, 503),
    tags=("admin",),
)
def rotate_key(key_id: str) -> Response:
    no_body()
    record, plaintext = _repo().rotate(key_id)
    return _created(record, plaintext, 200)


@bp.get("/usage")
@require_auth
@documented(
    "Usage from the ledger: calls, errors, tokens and cost by key, model or day",
    query=UsageQuery,
    responses={200: UsageOut},
    errors=(400, 403, 503),
    tags=("admin",),
)
def usage() -> Response:
    q = _usage_query(request.args)
    rows = usage_report(
        _accounts().store.engine, q.by, since=_moment(q.since), until=_moment(q.until), key_id=q.key
    )
    return jsonify({"by": q.by, "rows": rows})


def _usage_query(args: MultiDict[str, str]) -> UsageQuery:
    unknown = sorted(set(args) - set(UsageQuery.model_fields))
    if unknown:
        raise InvalidRequestError(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    return UsageQuery.model_validate(args.to_dict())


def _moment(value: date | datetime | None) -> datetime | None:
    """A query bound as naive UTC (how the ledger stores time); a date means its midnight."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value
    return datetime.combine(value, time())
