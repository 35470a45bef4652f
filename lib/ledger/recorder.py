"""Turning the gateway's per-upstream-call report into a ledger row (and a budget charge).

``LedgerRecorder`` is an ``UpstreamObserver`` (``lib.providers.gateway``): the gateway already
reports every upstream call -- each retry, each fallback, each stream when it ends -- with its model,
usage, latency and outcome.  The recorder adds who asked (key id, route, request id: from a
``context`` callable the web layer supplies, so this module knows nothing about Flask), prices the
tokens (and generated images, per image), charges the key's in-memory spend and queues the row.  The
gateway reports to it alongside its other observers (``Gateway.add_observer``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from lib.assessment.tester.estimate import price_for
from lib.errors import AIProxyError
from lib.ledger.writer import LedgerWriter
from lib.providers.base import Usage
from lib.providers.gateway import UpstreamCall
from lib.providers.routing import resolve_model

#: The registry's price per model name, looked up once per name (the hot path pays a dict lookup).
_price = functools.lru_cache(maxsize=1024)(price_for)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """List-price cost of one call, None when the model has no known price."""
    price = _price(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


@functools.lru_cache(maxsize=256)
def image_price(model: str) -> float | None:
    """List price per image of an image model (its spec's ``ImageModel``), None when unknown."""
    try:
        route = resolve_model(model)
        rules = route.spec.images(route.model_id)
    except AIProxyError:  # not routable, or a provider without image models
        return None
    return rules.usd_per_image if rules is not None else None


def call_cost(model: str, usage: Usage) -> float | None:
    """Tokens at the model's token price plus images at its per-image price (None: no known price)."""
    cost = cost_usd(model, usage.prompt_tokens, usage.completion_tokens)
    if usage.images:
        per_image = image_price(model)
        if per_image is not None:
            cost = (cost or 0.0) + usage.images * per_image
    return cost


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
        charge: Callable[[str, float], None] | None = None,
    ) -> None:
        self.writer = writer
        self.context = context
        self.charge = charge

    def observe_upstream(self, call: UpstreamCall) -> None:
        ctx = self.context()
        if ctx is None:  # not on behalf of a request (a CLI sharing the gateway): nothing to bill
            return
        model, usage = call.model, call.usage
        prompt = usage.prompt_tokens if usage is not None else 0
        completion = usage.completion_tokens if usage is not None else 0
        cost = call_cost(model, usage) if usage is not None else cost_usd(model, 0, 0)
        now = datetime.now(UTC).replace(tzinfo=None)
        self.writer.record(
            {
                "ts": now,
                "day": now.strftime("%Y-%m-%d"),
                "key_id": ctx.key_id[:128],
                "route": ctx.route[:200],
                "provider": call.provider[:32],
                "model": model[:200],
                "operation": call.operation,
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "cost_usd": cost,
                "latency_ms": round(call.latency_s * 1000, 3),
                "status": call.error_kind or "ok",
                "request_id": ctx.request_id,
            }
        )
        if cost and self.charge is not None:
            self.charge(ctx.key_id, cost)
