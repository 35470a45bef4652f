"""The Flask app factory: settings -> gateway -> blueprints, auth check, logging, metrics, errors."""

from __future__ import annotations

import logging
import re
import secrets
import time

from flask import Blueprint, Flask, Response, g, request

from lib.observability import Metrics, configure_logging
from lib.providers.gateway import Gateway
from lib.settings import Settings, load_settings
from lib.tokens import TokenVerifier
from src.accounts import ACCOUNTS_EXTENSION, Accounts, current_call
from src.api import Services
from src.auth import TOKENS_EXTENSION, check_auth_configured
from src.body_limit import BodyLimitMiddleware
from src.errors import register_error_handlers
from src.quota import Quota

log = logging.getLogger("aiproxy.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _blueprints() -> list[Blueprint]:
    from src.routes import (
        admin,
        assessment,
        collections,
        health,
        images,
        legacy,
        native,
        openai_compat,
        ops,
        responses,
    )

    return [
        health.bp,
        native.bp,
        openai_compat.bp,
        responses.bp,
        images.bp,
        legacy.bp,
        ops.bp,
        assessment.bp,
        admin.bp,
        collections.bp,
    ]


def create_app(settings: Settings | None = None, gateway: Gateway | None = None) -> Flask:
    settings = settings or load_settings()
    configure_logging(settings.log_level)
    check_auth_configured(settings)
    metrics = Metrics()
    if gateway is None:
        gateway = Gateway(settings, observer=metrics)
    elif gateway.observer is None:
        gateway.observer = metrics

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["aiproxy"] = Services(settings=settings, gateway=gateway, metrics=metrics)
    # Store (migrated), virtual keys and the usage ledger; wraps the gateway's observer.
    app.extensions[ACCOUNTS_EXTENSION] = Accounts(settings, gateway, metrics)
    Quota(settings, metrics).install(app, gateway)
    app.extensions[TOKENS_EXTENSION] = TokenVerifier.from_settings(settings)

    for bp in _blueprints():
        app.register_blueprint(bp)
    register_error_handlers(app)
    # MAX_BODY_BYTES on the bytes actually read (chunked bodies have no Content-Length to check).
    # ... and the body must arrive within the request deadline (a trickled body cannot hold a slot forever).
    app.wsgi_app = BodyLimitMiddleware(  # type: ignore[method-assign]
        app.wsgi_app, settings.max_body_bytes, settings.request_deadline_seconds
    )

    @app.before_request
    def _start() -> None:
        g.started = time.monotonic()
        current_call.set(None)  # set again by auth; nothing of the previous request on this greenlet
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(16)
        g.deadline = gateway.new_deadline()
        # Fields known only after the response has started (a stream's in-band error) go here.
        g.late_log_fields = {}

    @app.after_request
    def _finish(response: Response) -> Response:
        request_id = g.get("request_id", "")
        response.headers["X-Request-Id"] = request_id
        started = g.get("started", time.monotonic())
        route = request.url_rule.rule if request.url_rule is not None else "<unmatched>"
        method = request.method
        extra = {"request_id": request_id, "method": method, "route": route, "status": response.status_code}
        if g.get("model"):
            extra["model"] = g.model
        if g.get("error_kind"):
            extra["error_kind"] = g.error_kind
        late: dict[str, object] = g.get("late_log_fields", {})

        def account() -> None:
            # Runs when the server closes the response, i.e. after the last byte is sent: the
            # duration covers a whole stream, and the log line and metrics cost the client nothing.
            elapsed = time.monotonic() - started
            metrics.observe_http(route, method, extra["status"], elapsed)
            extra["duration_ms"] = round(elapsed * 1000, 2)
            extra.update(late)
            log.info("request", extra=extra)

        response.call_on_close(account)
        return response

    return app
