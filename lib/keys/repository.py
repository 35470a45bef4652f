"""Creating, listing, revoking and rotating virtual keys in the database.

A key's plaintext is ``aip_`` + 43 URL-safe characters (256 random bits).  Only
``HMAC-SHA256(KEY_HASH_SECRET, plaintext)`` is stored: a copy of the database (or of the key cache
file) does not let anyone call the service, and without the secret the hashes cannot even be
brute-forced offline.  The plaintext is returned once, by ``create`` and ``rotate``, and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import replace

import sqlalchemy as sa

from lib.errors import InvalidRequestError
from lib.keys.model import KeyRecord, KeySpec, utcnow
from lib.store.db import Store
from lib.store.schema import api_keys

KEY_PREFIX = "aip_"
_MIN_SECRET = 16


class KeyNotFoundError(InvalidRequestError):
    """No key with that id (the HTTP layer answers 404)."""

    kind = "not_found"


def key_hasher(secret: str) -> hmac.HMAC:
    """The keyed hash all replicas must share; copied per use (``.copy()``) for speed."""
    if len(secret) < _MIN_SECRET:
        raise ValueError(f"KEY_HASH_SECRET must be at least {_MIN_SECRET} characters")
    return hmac.new(secret.encode(), digestmod=hashlib.sha256)


def hash_key(hasher: hmac.HMAC, plaintext: str) -> str:
    h = hasher.copy()
    h.update(plaintext.encode())
    return h.hexdigest()


def looks_like_virtual_key(presented: str) -> bool:
    return presented.startswith(KEY_PREFIX) and len(presented) == len(KEY_PREFIX) + 43


class KeyRepository:
    def __init__(self, store: Store, secret: str) -> None:
        self.store = store
        self._hasher = key_hasher(secret)

    def hash(self, plaintext: str) -> str:
        return hash_key(self._hasher, plaintext)

    def _new_secret(self) -> tuple[str, str, str]:
        plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
        return plaintext, self.hash(plaintext), plaintext[: len(KEY_PREFIX) + 6]

    def create(self, spec: KeySpec) -> tuple[KeyRecord, str]:
        """Store a new key; return it and its plaintext (shown once)."""
        plaintext, digest, prefix = self._new_secret()
        now = utcnow()
        record = KeyRecord.from_row(
            {
                "id": "key_" + secrets.token_hex(8),
                "name": spec.name,
                "owner": spec.owner,
                "key_hash": digest,
                "key_prefix": prefix,
                "scopes": ",".join(spec.scopes),
                "models": ",".join(spec.models),
                "tier": spec.tier,
                "rpm": spec.rpm,
                "tpm": spec.tpm,
                "max_concurrent": spec.max_concurrent,
                "monthly_budget_usd": spec.monthly_budget_usd,
                "expires_at": spec.expires_at,
                "created_at": now,
                "updated_at": now,
            }
        )
        with self.store.engine.begin() as conn:
            conn.execute(api_keys.insert().values(**record.to_row()))
        return record, plaintext

    def all(self) -> list[KeyRecord]:
        with self.store.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [KeyRecord.from_row(r) for r in rows]

    def get(self, key_id: str) -> KeyRecord:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        if row is None:
            raise KeyNotFoundError(f"no key with id {key_id!r}", field="id")
        return KeyRecord.from_row(row)

    def find_by_hash(self, digest: str) -> KeyRecord | None:
        with self.store.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == digest)).mappings().first()
        return KeyRecord.from_row(row) if row is not None else None

    def revoke(self, key_id: str) -> KeyRecord:
        """Revoke now (idempotent: a revoked key keeps its first revocation time)."""
        record = self.get(key_id)
        if record.revoked_at is not None:
            return record
        now = utcnow()
        with self.store.engine.begin() as conn:
            conn.execute(
                api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now, updated_at=now)
            )
        return replace(record, revoked_at=now, updated_at=now)

    def rotate(self, key_id: str) -> tuple[KeyRecord, str]:
        """A new secret for the same key (same id, limits, ledger history); the old one stops working."""
        record = self.get(key_id)
        if record.revoked_at is not None:
            raise InvalidRequestError(f"key {key_id} is revoked: create a new key instead", field="id")
        plaintext, digest, prefix = self._new_secret()
        now = utcnow()
        with self.store.engine.begin() as conn:
            conn.execute(
                api_keys.update()
                .where(api_keys.c.id == key_id)
                .values(key_hash=digest, key_prefix=prefix, updated_at=now)
            )
        return replace(record, key_hash=digest, key_prefix=prefix, updated_at=now), plaintext
