"""The one place that decides whether a routed model can honour a request's features.

A feature the model lacks is an ``InvalidRequestError`` (HTTP 400) naming the field; nothing is
silently dropped. The gateway calls ``require`` (chat) and ``require_embeddings`` before any upstream
call, and skips fallback targets that would refuse. What each model can do is not decided here: it
comes from its provider's spec (``ProviderSpec.capabilities`` in ``lib/providers/<name>/spec.py``),
so this module holds only the order of the checks and their wording.
"""

from __future__ import annotations

from lib.errors import InvalidRequestError
from lib.providers.base import ChatRequest
from lib.providers.routing import Route


def _uses_tools(request: ChatRequest) -> bool:
    return bool(request.tools) or any(m.role == "tool" or m.tool_calls for m in request.messages)


def missing(route: Route, request: ChatRequest, *, stream: bool = False) -> tuple[str, str] | None:
    """``(field, message)`` for the first feature ``route`` cannot honour, else ``None``."""
    caps = route.spec.capabilities(route.model_id)
    name, title = route.name, route.spec.title
    for fld in request.sampling.set_fields():
        if fld not in caps.sampling:
            return fld, f"{fld} is not supported by model {name} ({route.provider})"
    if stream and request.n > 1 and not caps.stream_n:
        return "n", f"n > 1 with stream: true is not supported by model {name} ({title})"
    if request.json_schema is not None and not caps.json:
        return "response_format", f"response_format (JSON output) is not supported by model {name} ({title})"
    if _uses_tools(request) and not caps.tools:
        return "tools", f"tools (function calling) are not supported by model {name} ({title})"
    choice = request.tool_choice
    forced = choice is not None and choice.mode in ("required", "function")
    if forced and request.tools and not caps.forced_tool_choice:
        return "tool_choice", f"model {name} supports only tool_choice auto or none ({title})"
    if request.parallel_tool_calls is False and request.tools and not caps.parallel_tool_calls_off:
        return "parallel_tool_calls", f"parallel_tool_calls: false is not supported by model {name}"
    if any(m.images for m in request.messages) and not caps.images:
        return "messages", f"model {name} does not accept images"
    return None


def missing_embeddings(route: Route) -> tuple[str, str] | None:
    """``("model", message)`` when ``route`` makes no embeddings, else ``None``."""
    if route.spec.capabilities(route.model_id).embeddings:
        return None
    return "model", f"model {route.name} does not make embeddings ({route.spec.title})"


def require(route: Route, request: ChatRequest, *, stream: bool = False) -> None:
    """Raise ``InvalidRequestError`` (400) naming the first feature ``route`` cannot honour."""
    _raise(route, missing(route, request, stream=stream))


def _raise(route: Route, problem: tuple[str, str] | None) -> None:
    if problem is not None:
        fld, message = problem
        raise InvalidRequestError(message, field=fld, model=route.name)


def require_embeddings(route: Route) -> None:
    """Raise ``InvalidRequestError`` (400) naming ``model`` when ``route`` makes no embeddings."""
    _raise(route, missing_embeddings(route))
