"""Client authentication: fail closed.

Clients send the aiproxy key in ``Authorization`` either raw (the Code.org web app) or as
``Bearer <key>`` (the openai SDK).  Several keys may be configured at once (comma-separated
``AIPROXY_API_KEY``) so that keys can be rotated without downtime.  Comparison is constant-time and
every configured key is compared, so timing reveals neither the key nor which key matched.

Those configured keys are the root key (every scope).  Virtual keys (``aip_...``, issue 14) are
checked from the worker's key cache (``src/accounts.py``): unknown, revoked or expired -> 401, a
scope the route needs missing -> 403 ``forbidden``, the month's budget spent -> 429
``budget_exceeded``.  The caller is bound to the request (``g.principal``, ``current_call``) for
the model allow-list and the usage ledger.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Response, current_app, g, request

from lib.keys import looks_like_virtual_key
from lib.limits import Limits
from lib.settings import Settings, SettingsError
from lib.tokens import TokenError, TokenVerifier, looks_like_jwt
from src.accounts import (
    ACCOUNTS_EXTENSION,
    ANONYMOUS,
    ROOT,
    Accounts,
    Principal,
    bind_principal,
    check_virtual_key,
)
from src.errors import error_response
from src.quota import Caller, quota
from src.scopes import route_scope

log = logging.getLogger("aiproxy.auth")
F = TypeVar("F", bound=Callable[..., Any])
#: ``app.extensions`` key of the ``TokenVerifier`` (absent or None = browser tokens are off).
TOKENS_EXTENSION = "aiproxy.tokens"
#: Who browser-token calls are recorded as in the usage ledger and metrics (not per sub: a student id
#: is neither a metrics label nor a key).
BROWSER_TOKENS = Principal("jwt", "browser-tokens")


def check_auth_configured(settings: Settings) -> None:
    """Refuse to start without keys unless the explicit development switch is set."""
    if settings.api_keys or settings.jwt_issuer:
        return
    if settings.aiproxy_allow_unauthenticated:
        log.warning(
            "!!! AIPROXY_API_KEY is not set and AIPROXY_ALLOW_UNAUTHENTICATED is on: every route is OPEN. "
            "Development only - never expose this service beyond loopback like this. !!!"
        )
        return
    raise SettingsError(
        "AIPROXY_API_KEY is not set: refusing to start an open service. Set AIPROXY_API_KEY "
        "(comma-separated for rotation), or AIPROXY_ALLOW_UNAUTHENTICATED=1 for local development "
        "(bin/serve does that only when it binds to loopback)."
    )


def presented_key(header: str | None) -> str | None:
    if not header:
        return None
    value = header.strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer" and rest.strip():
        return rest.strip()
    return value


def key_matches(presented: str, keys: list[str]) -> bool:
    given = presented.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(given, key.encode())
    return ok


def require_auth(view: F) -> F:
    """Decorator for every route that can spend money or reveal configuration."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        settings: Settings = current_app.extensions["aiproxy"].settings
        keys = settings.api_keys
        if not keys and settings.aiproxy_allow_unauthenticated:
            if not _loopback_client(request.remote_addr):
                return _unauthorized(
                    "this service runs without AIPROXY_API_KEY (the development switch), which serves "
                    "loopback clients only"
                )
            _bind(ANONYMOUS)
            return view(*args, **kwargs)
        key = presented_key(request.headers.get("Authorization"))
        if key is None:
            return _unauthorized("missing Authorization header (send the aiproxy key, raw or as Bearer)")
        if key_matches(key, keys):
            _bind(ROOT)
            quota().admit(quota().root())
            return view(*args, **kwargs)
        if looks_like_virtual_key(key):
            return _virtual_key_call(key, view, args, kwargs)
        if looks_like_jwt(key) and current_app.extensions.get(TOKENS_EXTENSION) is not None:
            return _token_call(key, view, args, kwargs)
        return _unauthorized("invalid API key")

    wrapper._aiproxy_auth = True  # type: ignore[attr-defined]
    return cast(F, wrapper)


def _token_call(token: str, view: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A browser's short-lived JWT: verified, its scopes checked against the route, its ``sub``
    limited on its own (one student cannot drain a class's quota)."""
    verifier: TokenVerifier = current_app.extensions[TOKENS_EXTENSION]
    try:
        claims = verifier.verify(token)
    except TokenError as exc:
        return _unauthorized(f"invalid token: {exc}")
    needed = route_scope(request.path)
    if needed is not None and (needed == "admin" or needed not in verifier.route_groups(claims)):
        return error_response(403, f"token scopes do not include {needed!r} for this route", "forbidden")
    _bind(BROWSER_TOKENS)  # one ledger account for every token; limits stay per sub
    quota().admit(quota().token_subject(claims.sub))
    return view(*args, **kwargs)


def _bind(principal: Principal) -> None:
    g.principal = principal
    route = request.url_rule.rule if request.url_rule is not None else request.path
    bind_principal(principal, route, g.get("request_id", ""))


def _virtual_key_call(key: str, view: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    """A virtual key from the worker's key cache: status, scope and budget checked, then its limits."""
    accounts: Accounts | None = current_app.extensions.get(ACCOUNTS_EXTENSION)
    record = accounts.lookup(key) if accounts is not None else None
    if record is None or accounts is None:
        return _unauthorized("invalid API key")
    refused = check_virtual_key(record, request.path, route_scope(request.path), accounts.spend(record.id))
    if refused:
        return _unauthorized(refused)
    _bind(Principal(record.id, record.name, record))
    limits = Limits(record.rpm, record.tpm, record.max_concurrent, record.tier)  # type: ignore[arg-type]
    quota().admit(Caller(f"key:{record.id}", f"key {record.name!r}", limits))
    return view(*args, **kwargs)


def _loopback_client(address: str | None) -> bool:
    """The open development mode serves only clients connecting from this machine.

    The server checks its bind addresses at start-up (src/gunicorn_conf.py, src/server.py), but a
    start-up check can be bypassed (``bin/serve -c other.conf``, another WSGI server, a port forward
    added later); the peer address of each request cannot, so the switch holds per request too.  A
    unix-socket peer (no IP address) is not provably local and is refused, as at start-up.
    """
    try:
        ip = ipaddress.ip_address((address or "").split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _unauthorized(message: str) -> Response:
    return error_response(401, message, "unauthorized")
