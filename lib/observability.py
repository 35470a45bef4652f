"""Logging and Prometheus metrics, owned by the app (one ``Metrics`` per app, no module globals).

Logs are one JSON object per line.  Nothing here ever receives request bodies: callers pass only
ids, routes, statuses, timings, model names and token counts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess

if TYPE_CHECKING:
    from lib.providers.gateway import UpstreamCall

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180)


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", ...extra}`` on one line."""

    _RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._RESERVED and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure_logging(level: str) -> None:
    """Idempotent: one stderr handler with the JSON formatter on the root logger."""
    root = logging.getLogger()
    root.setLevel(level)
    for handler in root.handlers:
        if getattr(handler, "_aiproxy", False):
            return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler._aiproxy = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    # Library chatter that could carry request details stays at WARNING.
    for noisy in ("botocore", "boto3", "urllib3", "httpx2", "httpcore2", "openai", "werkzeug"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class Metrics:
    """Prometheus metrics of one app.  Under gunicorn with several workers, set
    ``PROMETHEUS_MULTIPROC_DIR`` (``src/gunicorn_conf.py`` does) and every worker's numbers are
    aggregated at scrape time."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "aiproxy_http_requests", "HTTP requests served", ["route", "method", "status"], registry=r
        )
        self.http_latency = Histogram(
            "aiproxy_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "aiproxy_upstream_duration_seconds",
            "Upstream call latency",
            ["provider", "model", "operation", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_tokens = Counter(
            "aiproxy_upstream_tokens", "Tokens used upstream", ["provider", "model", "type"], registry=r
        )
        self.errors = Counter("aiproxy_errors", "Errors by kind", ["kind"], registry=r)
        self.quota_rejections = Counter(
            "aiproxy_quota_rejections", "Requests refused 429 quota, by limit", ["limit"], registry=r
        )
        self.limiter_fallbacks = Counter(
            "aiproxy_limiter_fallback",
            "Limit checks answered per replica because the shared limit store (Redis) was unreachable",
            registry=r,
        )

    # UpstreamObserver protocol (lib.providers.gateway)
    def observe_upstream(self, call: UpstreamCall) -> None:
        provider, model, usage = call.provider, call.model, call.usage
        self.upstream_latency.labels(provider, model, call.operation, call.error_kind or "ok").observe(
            call.latency_s
        )
        if usage is not None:
            if usage.prompt_tokens:
                self.upstream_tokens.labels(provider, model, "prompt").inc(usage.prompt_tokens)
            if usage.completion_tokens:
                self.upstream_tokens.labels(provider, model, "completion").inc(usage.completion_tokens)
        if call.error_kind:
            self.errors.labels(call.error_kind).inc()

    def observe_http(self, route: str, method: str, status: int, latency_s: float) -> None:
        self.http_requests.labels(route, method, str(status)).inc()
        self.http_latency.labels(route, method).observe(latency_s)

    def render(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            prom_multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
