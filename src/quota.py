"""Per-caller limits on the request path: admit the request or answer 429 ``quota``.

``src.auth`` calls ``admit(caller)`` once the caller is known (the root key, a virtual key, a browser
token's ``sub``).  An admitted request holds a lease until its response is closed (after the last
byte of a stream): then its tokens (reported by the gateway through ``lib.limits.usage``) are added
to the caller's TPM window and its concurrency slot is freed.  Callers without limits cost nothing:
no store is touched.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from flask import Flask, Response, after_this_request, current_app

from lib.errors import QuotaExceededError
from lib.limits import Lease, Limiter, Limits, build_limiter
from lib.limits.usage import CURRENT_LEASE, LimitObserver
from lib.observability import Metrics
from lib.providers.gateway import Gateway
from lib.settings import Settings

log = logging.getLogger("aiproxy.quota")
_EXTENSION = "aiproxy.quota"


@dataclass(frozen=True)
class Caller:
    """Who the limits apply to: ``subject`` keys the counters, ``label`` names the caller in a 429."""

    subject: str
    label: str
    limits: Limits


class Quota:
    def __init__(self, settings: Settings, metrics: Metrics, limiter: Limiter | None = None) -> None:
        self.metrics = metrics
        self.limiter = limiter or build_limiter(settings, on_fallback=metrics.limiter_fallbacks.inc)
        self.root_limits = Limits(
            settings.root_key_rpm,
            settings.root_key_tpm,
            settings.root_key_concurrency,
            settings.root_key_class,
        )
        self.sub_limits = Limits(settings.jwt_sub_rpm, settings.jwt_sub_tpm, settings.jwt_sub_concurrency)
        self.cooldown_seconds = settings.batch_cooldown_seconds

    def install(self, app: Flask, gateway: Gateway) -> None:
        """Register on the app and add the limiter's observer to the gateway's."""
        app.extensions[_EXTENSION] = self
        gateway.add_observer(LimitObserver(self.limiter, self.cooldown_seconds))

    def root(self) -> Caller:
        return Caller("root", "the root key", self.root_limits)

    def token_subject(self, sub: str) -> Caller:
        return Caller(f"sub:{sub}", "this user", self.sub_limits)

    def admit(self, caller: Caller) -> None:
        """Admit the request in progress for ``caller`` or raise ``QuotaExceededError`` (429)."""
        if caller.limits.unlimited:
            return
        try:
            lease = self.limiter.acquire(caller.subject, caller.limits, label=caller.label)
        except QuotaExceededError as exc:
            self.metrics.quota_rejections.labels(exc.limit).inc()
            raise
        CURRENT_LEASE.set(lease)

        @after_this_request
        def _release_when_sent(response: Response) -> Response:
            response.call_on_close(functools.partial(_release, lease))
            return response


def _release(lease: Lease) -> None:
    CURRENT_LEASE.set(None)
    lease.release()


def quota() -> Quota:
    q: Quota = current_app.extensions[_EXTENSION]
    return q
