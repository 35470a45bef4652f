"""The one place that decides whether a routed model can honour a chat request's features.

A feature the model lacks is an ``InvalidRequestError`` (HTTP 400) naming the field; nothing is
silently dropped. The gateway calls ``require`` before any upstream call (and skips fallback targets
that would refuse). Per provider:

- ``openai``: everything passes through (OpenAI itself refuses what a model lacks).
- ``bedrock`` (Converse): tools (Claude 3+, Llama 3.1+, Nova, Mistral Large, Cohere Command R);
  ``tool_choice`` ``required``/function only where Converse has a forced tool choice (Claude 3+,
  Nova); images on Claude 3+, Nova Lite/Pro, Llama 3.2 11B/90B; ``top_p`` and ``user`` (sent as
  ``requestMetadata``). Refused: ``seed``, ``presence_penalty``, ``frequency_penalty``,
  ``logit_bias``, ``logprobs``/``top_logprobs``, ``parallel_tool_calls: false``.
- ``local`` (SmolLM2 on llama.cpp): ``top_p``, ``seed``, ``presence_penalty``,
  ``frequency_penalty``. Refused: tools and tool turns (not implemented yet), images, ``logit_bias``,
  ``logprobs``/``top_logprobs``, ``user``.
"""

from __future__ import annotations

from lib.errors import InvalidRequestError
from lib.providers.base import ChatRequest
from lib.providers.routing import Route

#: Sampling fields each provider honours (others are refused by name).
_SAMPLING: dict[str, frozenset[str]] = {
    "openai": frozenset(
        {
            "top_p",
            "seed",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "user",
            "logprobs",
            "top_logprobs",
        }
    ),
    "bedrock": frozenset({"top_p", "user"}),
    "local": frozenset({"top_p", "seed", "presence_penalty", "frequency_penalty"}),
}


def bedrock_tools(model_id: str) -> bool:
    from lib.providers.bedrock.models import base_model_id, family

    mid = base_model_id(model_id).lower()
    fam = family(model_id)
    if fam == "anthropic":
        return "claude-v2" not in mid and "claude-instant" not in mid
    if fam == "meta":
        return not ("llama3-8b" in mid or "llama3-70b" in mid or "llama2" in mid)  # 3.1 and later
    if fam == "amazon":
        return "nova" in mid
    if fam == "mistral":
        return "large" in mid
    if fam == "cohere":
        return "command-r" in mid
    return False


def bedrock_images(model_id: str) -> bool:
    from lib.providers.bedrock.models import base_model_id, family

    mid = base_model_id(model_id).lower()
    fam = family(model_id)
    if fam == "anthropic":
        return "claude-3" in mid or "claude-sonnet-4" in mid or "claude-opus-4" in mid or "-4-5" in mid
    if fam == "amazon":
        return "nova-lite" in mid or "nova-pro" in mid or "nova-premier" in mid
    if fam == "meta":
        return "llama3-2-11b" in mid or "llama3-2-90b" in mid or "llama4" in mid
    return False


def missing(route: Route, request: ChatRequest, *, stream: bool = False) -> tuple[str, str] | None:
    """``(field, message)`` for the first feature ``route`` cannot honour, else ``None``."""
    provider = route.provider
    if provider == "openai":
        return None
    name = route.name
    for fld in request.sampling.set_fields():
        if fld not in _SAMPLING.get(provider, frozenset()):
            return fld, f"{fld} is not supported by model {name} ({provider})"
    has_images = any(m.images for m in request.messages)
    if provider == "local":
        if has_images:
            return "messages", f"model {name} does not accept images"
        if request.tools or any(m.role == "tool" or m.tool_calls for m in request.messages):
            return "tools", f"tools (function calling) are not supported by model {name} yet"
        return None
    if provider == "bedrock":
        from lib.providers.bedrock.models import chat_capabilities

        model_id = route.model_id
        if stream and request.n > 1:
            return "n", f"n > 1 with stream: true is not supported by model {name} (Bedrock)"
        uses_tools = bool(request.tools) or any(m.role == "tool" or m.tool_calls for m in request.messages)
        if uses_tools and not bedrock_tools(model_id):
            return "tools", f"model {name} does not support tools (function calling) on Bedrock"
        choice = request.tool_choice
        if (
            choice is not None
            and choice.mode in ("required", "function")
            and request.tools
            and not chat_capabilities(model_id).forced_tool
        ):
            return "tool_choice", f"model {name} supports only tool_choice auto or none on Bedrock"
        if request.parallel_tool_calls is False and request.tools:
            return "parallel_tool_calls", f"parallel_tool_calls: false is not supported by model {name}"
        if has_images and not bedrock_images(model_id):
            return "messages", f"model {name} does not accept images"
    return None


def require(route: Route, request: ChatRequest, *, stream: bool = False) -> None:
    """Raise ``InvalidRequestError`` (400) naming the first feature ``route`` cannot honour."""
    problem = missing(route, request, stream=stream)
    if problem is not None:
        fld, message = problem
        raise InvalidRequestError(message, field=fld, model=route.name)
