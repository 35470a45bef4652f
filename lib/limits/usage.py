"""Tokens and throttles seen by the gateway, fed back to the limiter.

The gateway reports every upstream call to each of its observers; ``LimitObserver`` is one of them
(after metrics and the ledger) and

- adds the call's tokens to the lease of the request that made it (TPM), found through a context
  variable set when the request was admitted: each request runs in its own greenlet, which has its own
  context, and a streamed answer is iterated in that same greenlet, so its final usage still finds
  the lease;
- opens the batch-class cool-down when an upstream answers ``rate_limited``.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from lib.limits.base import Lease, Limiter

if TYPE_CHECKING:
    from lib.providers.gateway import UpstreamCall

#: The lease of the request running in this greenlet (None outside a limited request).
CURRENT_LEASE: ContextVar[Lease | None] = ContextVar("aiproxy_current_lease", default=None)


class LimitObserver:
    def __init__(self, limiter: Limiter, cooldown_seconds: float) -> None:
        self.limiter = limiter
        self.cooldown_seconds = cooldown_seconds

    def observe_upstream(self, call: UpstreamCall) -> None:
        lease = CURRENT_LEASE.get()
        if lease is not None and call.usage is not None:
            lease.add_tokens(call.usage.total_tokens)
        if call.error_kind == "rate_limited" and self.cooldown_seconds > 0:
            self.limiter.note_throttle(self.cooldown_seconds)
