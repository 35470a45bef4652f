"""Reading the ledger: usage grouped by key, model or day (``GET /usage``, ``aiproxy-admin usage``)
and each key's spend this month (budgets).  Aggregation happens in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from lib.store.schema import api_keys, usage_ledger

GroupBy = Literal["key", "model", "day"]
_COLUMN = {"key": usage_ledger.c.key_id, "model": usage_ledger.c.model, "day": usage_ledger.c.day}


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    start = month_start(now)
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def monthly_spend(engine: sa.Engine, now: datetime) -> dict[str, float]:
    """USD spent per key id since the start of ``now``'s month (UTC)."""
    query = (
        sa.select(usage_ledger.c.key_id, sa.func.sum(usage_ledger.c.cost_usd))
        .where(usage_ledger.c.ts >= month_start(now))
        .group_by(usage_ledger.c.key_id)
    )
    with engine.connect() as conn:
        return {key: float(total or 0.0) for key, total in conn.execute(query)}


def usage_report(
    engine: sa.Engine,
    by: GroupBy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """One row per group: calls, errors, tokens in/out and cost (None when no call had a price)."""
    group = _COLUMN[by]
    ok = sa.case((usage_ledger.c.status == "ok", 0), else_=1)
    query = sa.select(
        group.label("group"),
        sa.func.count().label("calls"),
        sa.func.sum(ok).label("errors"),
        sa.func.sum(usage_ledger.c.prompt_tokens).label("prompt_tokens"),
        sa.func.sum(usage_ledger.c.completion_tokens).label("completion_tokens"),
        sa.func.sum(usage_ledger.c.cost_usd).label("cost_usd"),
    ).group_by(group)
    if since is not None:
        query = query.where(usage_ledger.c.ts >= since)
    if until is not None:
        query = query.where(usage_ledger.c.ts < until)
    if key_id is not None:
        query = query.where(usage_ledger.c.key_id == key_id)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(group)).mappings().all()
        names = dict(conn.execute(sa.select(api_keys.c.id, api_keys.c.name)).all()) if by == "key" else {}
    out = []
    for row in rows:
        item: dict[str, Any] = {by: row["group"]}
        if by == "key":
            item["name"] = names.get(row["group"], row["group"])
        item.update(
            calls=int(row["calls"]),
            errors=int(row["errors"] or 0),
            prompt_tokens=int(row["prompt_tokens"] or 0),
            completion_tokens=int(row["completion_tokens"] or 0),
            cost_usd=None if row["cost_usd"] is None else round(float(row["cost_usd"]), 6),
        )
        out.append(item)
    return out
