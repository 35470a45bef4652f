"""Turning the gateway's per-upstream-call report into a ledger row (and a budget charge).

``LedgerRecorder`` is an ``UpstreamObserver`` (``lib.providers.gateway``): the gateway already
reports every upstream call -- each retry, each fallback, each stream when it ends -- with its model,
usage, latency and outcome.  The recorder adds who asked (key id, route, request id: from a
``context`` callable the web layer supplies, so this module knows nothing about Flask), prices the
tokens, charges the key's in-memory spend and queues the row.  It then passes the call on to the
next observer (metrics), so the gateway keeps a single observer.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lib.assessment.tester.estimate import price_for
from lib.ledger.writer import LedgerWriter
from lib.providers.base import Usage
from lib.providers.gateway import UpstreamObserver

#: The registry's price per model name, looked up once per name (the hot path pays a dict lookup).
_price = functools.lru_cache(maxsize=1024)(price_for)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """List-price cost of one call, None when the model has no known price."""
    price = _price(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


@dataclass(frozen=True, slots=True)
class CallContext:
    key_id: str
    route: str
    request_id: str


class LedgerRecorder:
    def __init__(
        self,
        writer: LedgerWriter,
        context: Callable[[], CallContext | None],
        *,
        inner: UpstreamObserver | None = None,
        charge: Callable[[str, float], None] | None = None,
    ) -> None:
        self.writer = writer
        self.context = context
        self.inner = inner
        self.charge = charge

    def observe_upstream(
        self,
        *,
        provider: str,
        model: str,
        operation: str,
        latency_s: float,
        usage: Usage | None,
        error_kind: str | None,
    ) -> None:
        if self.inner is not None:
            self.inner.observe_upstream(
                provider=provider,
                model=model,
                operation=operation,
                latency_s=latency_s,
                usage=usage,
                error_kind=error_kind,
            )
        ctx = self.context()
        if ctx is None:  # not on behalf of a request (a CLI sharing the gateway): nothing to bill
            return
        prompt = usage.prompt_tokens if usage is not None else 0
        completion = usage.completion_tokens if usage is not None else 0
        cost = cost_usd(model, prompt, completion)
        now = datetime.now(UTC).replace(tzinfo=None)
        self.writer.record(
            {
                "ts": now,
                "day": now.strftime("%Y-%m-%d"),
                "key_id": ctx.key_id[:128],
                "route": ctx.route[:200],
                "provider": provider[:32],
                "model": model[:200],
                "operation": operation,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cost_usd": cost,
                "latency_ms": round(latency_s * 1000, 3),
                "status": error_kind or "ok",
                "request_id": ctx.request_id,
            }
        )
        if cost and self.charge is not None:
            self.charge(ctx.key_id, cost)
