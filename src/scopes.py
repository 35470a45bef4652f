"""Which scope a route needs: the route groups that virtual-key scopes and browser-token scopes name.

One table, so a key's ``scopes`` and a token's scope claim open exactly the same routes.  Routes not
listed (health, model lists, the API docs) need no scope beyond being authenticated.
"""

from __future__ import annotations

import re

#: Path prefix -> scope; a prefix matches the path itself and anything under ``prefix/``.
ROUTE_SCOPES: tuple[tuple[str, str], ...] = (
    ("/chat", "chat"),
    ("/v1/chat/completions", "chat"),
    ("/v1/responses", "chat"),
    ("/test/openai", "chat"),
    ("/embeddings", "embeddings"),
    ("/v1/embeddings", "embeddings"),
    ("/assessment", "assessment"),
    ("/test/assessment", "assessment"),
    ("/v1/images", "images"),
    ("/images", "images"),
    ("/metrics", "admin"),
    ("/usage", "admin"),
    ("/admin", "admin"),
    ("/collections", "admin"),
)
#: Exceptions to the prefix table, checked first: querying a collection is part of chatting (writes,
#: including deleting a document that happens to be named ``query``, stay ``admin``).
_EXACT_SCOPES: tuple[tuple[re.Pattern[str], str], ...] = ((re.compile(r"/collections/[^/]+/query"), "chat"),)


def route_scope(path: str) -> str | None:
    """The scope ``path`` needs, or None when any authenticated caller may call it."""
    for pattern, scope in _EXACT_SCOPES:
        if pattern.fullmatch(path):
            return scope
    for prefix, scope in ROUTE_SCOPES:
        if path == prefix or path.startswith(prefix + "/"):
            return scope
    return None
