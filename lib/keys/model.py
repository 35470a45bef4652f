"""What a virtual key is: the validated spec an admin submits and the record auth checks.

The spec (``KeySpec``) is the one validation used by both ``bin/aiproxy-admin keys create`` and
``POST /admin/keys``, so the CLI and the HTTP API accept and refuse exactly the same keys.  The
record (``KeyRecord``) is immutable and cheap to check on the hot path: scopes and the model
allow-list are frozensets/tuples prepared once when the cache loads.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Scope = Literal["assessment", "chat", "embeddings", "images", "admin"]
SCOPES: tuple[str, ...] = ("assessment", "chat", "embeddings", "images", "admin")
Tier = Literal["interactive", "batch"]
#: Id of the root key (``AIPROXY_API_KEY``) in the ledger; ``anonymous`` when auth is off (dev).
ROOT_KEY_ID = "root"
ANONYMOUS_KEY_ID = "anonymous"


def utcnow() -> datetime:
    """Naive UTC, as stored in the database (SQLite keeps no time zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


#: The largest limit a key can hold (a 32-bit signed integer column).
INT_MAX = 2**31 - 1


class KeySpec(BaseModel):
    """A new key's settings (``POST /admin/keys`` body, ``aiproxy-admin keys create`` options)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1, max_length=200, description="Who or what uses the key, e.g. rubric-tester."
    )
    owner: str = Field("", max_length=200, description="The person or team answerable for it.")
    scopes: list[Scope] = Field(
        min_length=1, description="Routes the key may call: assessment, chat, embeddings, images, admin."
    )
    models: list[str] = Field(
        default_factory=list,
        description="Model allow-list (exact names or shell patterns like gpt-4o*); empty = any model.",
    )
    tier: Tier = Field("interactive", description="batch keys back off first when an upstream throttles.")
    expires_at: datetime | None = Field(None, description="UTC expiry (ISO 8601); none = never.")
    # strict: a JSON true or "5" is not a number here (the documented schema says integer / number).
    # At most INT_MAX: the columns are 32-bit integers on PostgreSQL, and SQLite refuses larger ints.
    rpm: int | None = Field(None, ge=1, le=INT_MAX, strict=True, description="Requests per minute.")
    tpm: int | None = Field(None, ge=1, le=INT_MAX, strict=True, description="Tokens per minute.")
    max_concurrent: int | None = Field(
        None, ge=1, le=INT_MAX, strict=True, description="Requests in flight at once."
    )
    monthly_budget_usd: float | None = Field(
        None, ge=0, strict=True, description="Spend per calendar month (UTC)."
    )

    @field_validator("scopes")
    @classmethod
    def _unique_scopes(cls, v: list[str]) -> list[str]:
        return sorted(set(v), key=SCOPES.index)

    @field_validator("models")
    @classmethod
    def _clean_models(cls, v: list[str]) -> list[str]:
        out = []
        for raw in v:
            name = raw.strip()
            if not name or "," in name or len(name) > 200:
                raise ValueError(f"not a model name or pattern: {name[:40]!r}")
            out.append(name)
        return out

    @field_validator("expires_at", mode="before")
    @classmethod
    def _iso_text(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, str | datetime):
            raise ValueError("an ISO 8601 date-time text, e.g. 2027-06-30T00:00:00Z")
        return v

    @field_validator("expires_at")
    @classmethod
    def _utc(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is not None:
            v = v.astimezone(UTC).replace(tzinfo=None)
        return v


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One key as the database, the cache file and auth see it (never the plaintext)."""

    id: str
    name: str
    owner: str
    key_hash: str
    key_prefix: str
    scopes: frozenset[str]
    models: tuple[str, ...]
    tier: str
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    monthly_budget_usd: float | None
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None
    _exact_models: frozenset[str] = field(default=frozenset(), repr=False, compare=False)

    @classmethod
    def from_row(cls, row: Any) -> KeyRecord:
        m = dict(row)
        models = tuple(p for p in (m.get("models") or "").split(",") if p)
        return cls(
            id=m["id"],
            name=m["name"],
            owner=m.get("owner") or "",
            key_hash=m["key_hash"],
            key_prefix=m["key_prefix"],
            scopes=frozenset(s for s in m["scopes"].split(",") if s),
            models=models,
            tier=m.get("tier") or "interactive",
            rpm=m.get("rpm"),
            tpm=m.get("tpm"),
            max_concurrent=m.get("max_concurrent"),
            monthly_budget_usd=m.get("monthly_budget_usd"),
            expires_at=_dt(m.get("expires_at")),
            created_at=_dt(m["created_at"]) or utcnow(),
            updated_at=_dt(m["updated_at"]) or utcnow(),
            revoked_at=_dt(m.get("revoked_at")),
            _exact_models=frozenset(p for p in models if not any(c in p for c in "*?[")),
        )

    def to_row(self) -> dict[str, Any]:
        """Database/cache-file columns (``scopes``/``models`` comma-joined)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "key_hash": self.key_hash,
            "key_prefix": self.key_prefix,
            "scopes": ",".join(s for s in SCOPES if s in self.scopes),
            "models": ",".join(self.models),
            "tier": self.tier,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "max_concurrent": self.max_concurrent,
            "monthly_budget_usd": self.monthly_budget_usd,
            "expires_at": self.expires_at,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "revoked_at": self.revoked_at,
        }

    def public(self) -> dict[str, Any]:
        """What listings show: everything but the hash."""
        out = self.to_row()
        out.pop("key_hash")
        out["scopes"] = [s for s in SCOPES if s in self.scopes]
        out["models"] = list(self.models)
        out["status"] = self.status()
        for name in ("expires_at", "created_at", "updated_at", "revoked_at"):
            value = out[name]
            out[name] = value.isoformat() + "Z" if value is not None else None
        return out

    def status(self, now: datetime | None = None) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (now or utcnow()) >= self.expires_at:
            return "expired"
        return "active"

    def allows_model(self, *names: str) -> bool:
        """True when the allow-list is empty or any of ``names`` (as asked, as resolved) is on it."""
        if not self.models:
            return True
        for name in names:
            if name in self._exact_models or any(fnmatch.fnmatchcase(name, p) for p in self.models):
                return True
        return False


def _dt(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).removesuffix("Z"))
