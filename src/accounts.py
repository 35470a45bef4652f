"""Who is calling, and what their calls cost: the store, virtual keys and the ledger, wired into the app.

``Accounts`` is built once per app (``create_app``): it opens the store, migrates it (under the
store's lock; a database that is down at start is logged, not fatal -- the root key keeps working
and virtual keys come from the cache file), and, when ``KEY_HASH_SECRET`` is set, the key cache.
It adds a ``LedgerRecorder`` to the gateway's observers so every upstream call becomes a ledger row,
and installs the model guard that applies a key's model allow-list before any upstream call.

The caller of the request in progress is kept in a ``ContextVar`` (set by ``src.auth``): a streamed
answer's usage is reported when the stream ends, after Flask's request context is gone, but still in
the same greenlet/thread and so the same context.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from lib.errors import BudgetExceededError, ForbiddenError
from lib.keys import ANONYMOUS_KEY_ID, ROOT_KEY_ID, SCOPES, KeyCache, KeyRecord, KeyRepository
from lib.ledger import CallContext, LedgerRecorder, LedgerWriter, monthly_spend
from lib.ledger.report import next_month_start
from lib.observability import Metrics
from lib.providers.gateway import Gateway
from lib.providers.routing import Route
from lib.settings import Settings
from lib.store import Store

log = logging.getLogger("aiproxy.accounts")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: its ledger id (``root``, ``jwt``, ``anonymous`` or a key id), a name,
    and for a virtual key its record (scopes, allow-list, limits); None for the others."""

    key_id: str
    name: str
    record: KeyRecord | None = None


ROOT = Principal(ROOT_KEY_ID, "root")
ANONYMOUS = Principal(ANONYMOUS_KEY_ID, "anonymous")

#: The caller and route of the request this greenlet/thread is serving (None between requests).
current_call: ContextVar[tuple[Principal, CallContext] | None] = ContextVar("aiproxy_call", default=None)


def _call_context() -> CallContext | None:
    current = current_call.get()
    return current[1] if current is not None else None


def model_guard(requested: str, route: Route) -> None:
    """Gateway guard: a key with a model allow-list may call only those models (403 otherwise)."""
    current = current_call.get()
    if current is None or current[0].record is None:
        return
    record = current[0].record
    if not record.allows_model(requested, route.name, route.model_id):
        raise ForbiddenError(
            f"this API key may not use model {requested!r} (allowed: {', '.join(record.models)})"
        )


#: ``app.extensions`` key of the app's ``Accounts``.
ACCOUNTS_EXTENSION = "aiproxy.accounts"


def bind_principal(principal: Principal, route: str, request_id: str) -> None:
    """Remember who this request is for (limits, the model guard and the ledger read it)."""
    current_call.set((principal, CallContext(principal.key_id, route, request_id)))


class KeyMetrics:
    """Prometheus counters per caller, labelled by key name (``root``, ``jwt``, ``anonymous``, a virtual
    key's name): upstream calls by outcome, tokens, and list-price cost. Fed from each ledger row."""

    def __init__(self, registry: CollectorRegistry, names: Callable[[str], str]) -> None:
        self.names = names
        self.calls = Counter(
            "aiproxy_key_upstream_calls", "Upstream calls per caller", ["key", "outcome"], registry=registry
        )
        self.tokens = Counter(
            "aiproxy_key_tokens", "Upstream tokens per caller", ["key", "type"], registry=registry
        )
        self.cost = Counter(
            "aiproxy_key_cost_usd", "List-price cost per caller (USD)", ["key"], registry=registry
        )

    def __call__(self, row: dict[str, Any]) -> None:
        name = self.names(row["key_id"])
        self.calls.labels(name, row["status"]).inc()
        if row["prompt_tokens"]:
            self.tokens.labels(name, "prompt").inc(row["prompt_tokens"])
        if row["completion_tokens"]:
            self.tokens.labels(name, "completion").inc(row["completion_tokens"])
        if row["cost_usd"]:
            self.cost.labels(name).inc(row["cost_usd"])


class Accounts:
    #: While the database is unreachable, how often to try the start-up migration again (s).
    MIGRATE_RETRY_SECONDS = 5.0

    def __init__(self, settings: Settings, gateway: Gateway, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.store = Store.from_settings(settings)
        self._closed = threading.Event()
        self.migrated = self._migrate()
        if not self.migrated:
            # Once the database is back, migrate it: the queued ledger rows then have their table.
            threading.Thread(target=self._migrate_when_reachable, name="aiproxy-migrate", daemon=True).start()
        self.writer = LedgerWriter(
            self.store.engine,
            flush_seconds=settings.ledger_flush_seconds,
            queue_max=settings.ledger_queue_max,
        )
        self.repo: KeyRepository | None = None
        self.cache: KeyCache | None = None
        secret = settings.key_hash_secret.get_secret_value() if settings.key_hash_secret else ""
        if secret:
            self.repo = KeyRepository(self.store, secret)
            self.cache = KeyCache(
                self.repo,
                cache_file=settings.data_dir / "keys-cache.json",
                refresh_seconds=settings.key_cache_refresh_seconds,
                spend_source=lambda: monthly_spend(self.store.engine, datetime.now(UTC).replace(tzinfo=None)),
            )
        if metrics is not None:
            self.writer.on_record = KeyMetrics(metrics.registry, self.key_name)
        charge = self.cache.add_spend if self.cache is not None else None
        gateway.add_observer(LedgerRecorder(self.writer, _call_context, charge=charge))
        gateway.guard = model_guard

    def _migrate(self, *, retry: bool = False) -> bool:
        try:
            self.store.migrate()
        except Exception as exc:  # noqa: BLE001 - a database outage must not stop the service
            if not retry:
                log.error(
                    "database unavailable at start-up: root key only, virtual keys from the cache file",
                    extra={"error": type(exc).__name__, "database": self.store.describe()},
                )
            return False
        return True

    def _migrate_when_reachable(self) -> None:
        while not self._closed.wait(self.MIGRATE_RETRY_SECONDS):
            if self._migrate(retry=True):
                self.migrated = True
                log.warning("database reachable again: migrated", extra={"database": self.store.describe()})
                return

    def key_name(self, key_id: str) -> str:
        """A caller's name for metrics: the virtual key's name, else its id (root, jwt, anonymous)."""
        record = self.cache.by_id(key_id) if self.cache is not None else None
        return record.name if record is not None else key_id

    def lookup(self, presented: str) -> KeyRecord | None:
        return self.cache.lookup(presented) if self.cache is not None else None

    def spend(self, key_id: str) -> float:
        return self.cache.spend(key_id) if self.cache is not None else 0.0

    def close(self) -> None:
        """Write every queued ledger row (gunicorn's worker_exit hook calls this on SIGTERM)."""
        self._closed.set()
        if self.cache is not None:
            self.cache.stop()
        self.writer.close()


def check_virtual_key(record: KeyRecord, path: str, scope: str | None, spend: float) -> str | None:
    """Why ``record`` may not call ``path`` (which needs ``scope``) now: a 401 message (revoked,
    expired), or None.  Raises ``ForbiddenError`` (scope missing), ``BudgetExceededError`` (spent)."""
    status = record.status()
    if status != "active":
        return f"API key {status}"
    if scope is not None and scope not in record.scopes:
        have = ", ".join(s for s in SCOPES if s in record.scopes)
        raise ForbiddenError(f"this API key lacks the {scope!r} scope needed for {path} (it has: {have})")
    budget = record.monthly_budget_usd
    if budget is not None and spend >= budget:
        now = datetime.now(UTC).replace(tzinfo=None)
        raise BudgetExceededError(
            f"monthly budget of {budget:.2f} USD spent for key {record.name!r} ({spend:.2f} USD this month)",
            retry_after=(next_month_start(now) - now).total_seconds(),
        )
    return None
