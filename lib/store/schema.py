"""The current shape of every table, as SQLAlchemy Core ``Table`` objects the code queries.

Migrations (``lib/store/migrations/versions/``) are the history that builds this shape; they are
frozen copies and never import this module, so an old migration keeps meaning what it meant when it
shipped.  ``tests/store`` checks that the migrated database has exactly these columns.  Later work
(feedback, retrieval) adds its tables here and a migration that creates them.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

#: Virtual API keys.  Only a keyed hash of the secret is stored (``key_hash``); ``key_prefix`` is the
#: first characters of the plaintext so people can recognise a key in listings.
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("owner", sa.String(200), nullable=False, server_default=""),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_prefix", sa.String(16), nullable=False),
    sa.Column("scopes", sa.String(200), nullable=False),
    sa.Column("models", sa.Text, nullable=False, server_default=""),
    sa.Column("tier", sa.String(16), nullable=False, server_default="interactive"),
    sa.Column("rpm", sa.Integer, nullable=True),
    sa.Column("tpm", sa.Integer, nullable=True),
    sa.Column("max_concurrent", sa.Integer, nullable=True),
    sa.Column("monthly_budget_usd", sa.Float, nullable=True),
    sa.Column("expires_at", sa.DateTime, nullable=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("updated_at", sa.DateTime, nullable=False),
    sa.Column("revoked_at", sa.DateTime, nullable=True),
)

#: One row per upstream call.  Never content: ids, names, counts, cost, timing and outcome only.
usage_ledger = sa.Table(
    "usage_ledger",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("ts", sa.DateTime, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("key_id", sa.String(128), nullable=False),
    sa.Column("route", sa.String(200), nullable=False),
    sa.Column("provider", sa.String(32), nullable=False),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("operation", sa.String(32), nullable=False),
    sa.Column("prompt_tokens", sa.Integer, nullable=False),
    sa.Column("completion_tokens", sa.Integer, nullable=False),
    sa.Column("cost_usd", sa.Float, nullable=True),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("status", sa.String(64), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Index("ix_usage_ledger_key_ts", "key_id", "ts"),
    sa.Index("ix_usage_ledger_day", "day"),
)
