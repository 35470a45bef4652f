"""The gateway: the one object routes, the assessment pipeline and the CLIs call for model work.

It resolves model names to providers (``lib.providers.routing``), builds providers lazily (once per
process, with the factory of the provider's spec in ``lib.providers.registry``), enforces the request
deadline, retries retryable failures with exponential backoff and full jitter (honouring
``Retry-After``, never past the deadline), walks the configured fallback chain, and reports every
upstream call to its observers (metrics, the usage ledger, the limiter: ``add_observer``).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar

from lib.errors import AIProxyError, InvalidRequestError, ProviderNotInstalledError
from lib.providers import capabilities
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    EmbedRequest,
    EmbedResult,
    JsonSchema,
    Message,
    ModelInfo,
    Provider,
    Sampling,
    Tool,
    ToolChoice,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.images import ImageRequest, ImageResult, counted
from lib.providers.registry import REGISTRY, Registry
from lib.providers.routing import Route, resolve_model
from lib.settings import (
    PRODUCTION_ASSESSMENT_MODEL,
    PRODUCTION_CHAT_MODEL,
    PRODUCTION_EMBEDDING_MODEL,
    Settings,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
ModelKind = Literal["chat", "embedding", "assessment"]
ProviderFactory = Callable[[Settings], Provider]


@dataclass(frozen=True, slots=True)
class UpstreamCall:
    """One upstream call as the gateway reports it (each retry, each fallback, a stream when it ends);
    ``error_kind`` None when it succeeded."""

    provider: str
    model: str
    operation: str
    latency_s: float
    usage: Usage | None
    error_kind: str | None


class UpstreamObserver(Protocol):
    def observe_upstream(self, call: UpstreamCall) -> None: ...


class ObserverChain:
    """One upstream-call report fanned out to several observers, in the order they were added.

    Metrics, the usage ledger and the limiter each want every call; fanning out here spares each of
    them wrapping the next one and forwarding the report's fields by hand.
    """

    def __init__(self, observers: Sequence[UpstreamObserver] = ()) -> None:
        self.observers: list[UpstreamObserver] = list(observers)

    def observe_upstream(self, call: UpstreamCall) -> None:
        for observer in self.observers:
            observer.observe_upstream(call)


#: The registry's factories by provider name (tests replace some with stand-ins).
DEFAULT_FACTORIES: dict[str, ProviderFactory] = {spec.name: spec.factory for spec in REGISTRY}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter on an exponential ceiling; never sooner than the upstream's Retry-After."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        delay = random.uniform(0, ceiling)  # noqa: S311 - jitter, not crypto
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay


def _attempt_headroom(deadline: Deadline) -> float:
    """Time a retry must still have once its backoff ends to be worth making: a tenth of the
    request's deadline, at most 1 s (0.1 s of a 1-s deadline; 1 s of the web app's 165 s)."""
    return min(1.0, 0.1 * deadline.seconds)


class Gateway:
    def __init__(
        self,
        settings: Settings,
        *,
        factories: dict[str, ProviderFactory] | None = None,
        observer: UpstreamObserver | None = None,
        sleep: Callable[[float], None] | None = None,
        registry: Registry = REGISTRY,
    ) -> None:
        self.settings = settings
        self.observer = observer
        #: Called with (the model as asked, its route) before any upstream call; raises to refuse
        #: the call (the web layer's per-key model allow-list). None = every model may be called.
        self.guard: Callable[[str, Route], None] | None = None
        self.registry = registry
        if factories is None:
            factories = {spec.name: spec.factory for spec in registry}
        self._factories = dict(factories)
        self._providers: dict[str, Provider] = {}
        self._lock = threading.Lock()
        # None: ``time.sleep`` looked up at each call, so that gevent's patched sleep is the one used
        # even when this module was imported before monkey-patching (a bound default would block the
        # whole worker for the backoff).
        self._sleep = sleep
        self.retry = RetryPolicy(
            settings.max_retries, settings.retry_base_delay_seconds, settings.retry_max_delay_seconds
        )

    def add_observer(self, observer: UpstreamObserver) -> None:
        """Report every upstream call to ``observer`` too, after the observers already there."""
        if self.observer is None:
            self.observer = observer
        elif isinstance(self.observer, ObserverChain):
            self.observer.observers.append(observer)
        else:
            self.observer = ObserverChain([self.observer, observer])

    # --- routing --------------------------------------------------------------------------------
    def resolve(self, model: str) -> Route:
        return resolve_model(model, self.settings.model_aliases, self.registry)

    def default_model(self, kind: ModelKind) -> str:
        """Configured default, else production default with cloud credentials, else ``local``."""
        s = self.settings
        configured = {
            "chat": s.default_chat_model,
            "embedding": s.default_embedding_model,
            "assessment": s.default_assessment_model,
        }[kind]
        if configured:
            return configured
        if s.has_aws:
            return {
                "chat": PRODUCTION_CHAT_MODEL,
                "embedding": PRODUCTION_EMBEDDING_MODEL,
                "assessment": PRODUCTION_ASSESSMENT_MODEL,
            }[kind]
        if s.has_openai:
            return "text-embedding-3-small" if kind == "embedding" else "gpt-4o"
        return "local"

    def catalog(self) -> list[ModelInfo]:
        """The model names this service routes without asking an upstream: the defaults, the
        aliases, the fallback targets and the names each provider spec always lists (``local``)."""
        s = self.settings
        names: list[str] = [self.default_model("chat"), self.default_model("embedding")]
        names.append(self.default_model("assessment"))
        names += list(s.model_aliases)
        for targets in s.model_fallbacks.values():
            names += targets
        names += [name for spec in self.registry for name in spec.listed]
        out: list[ModelInfo] = []
        seen: set[str] = set()
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            try:
                route = self.resolve(name)
            except AIProxyError:
                continue
            out.append(ModelInfo(id=name, provider=route.provider, owned_by=route.provider))
        return out

    def new_deadline(self, seconds: float | None = None) -> Deadline:
        return Deadline(seconds if seconds is not None else self.settings.request_deadline_seconds)

    def provider(self, name: str) -> Provider:
        prov = self._providers.get(name)
        if prov is not None:
            return prov
        with self._lock:
            prov = self._providers.get(name)
            if prov is None:
                factory = self._factories.get(name)
                if factory is None:
                    raise ProviderNotInstalledError(f"{name} provider not installed", provider=name)
                prov = factory(self.settings)
                self._providers[name] = prov
        return prov

    # --- calls ----------------------------------------------------------------------------------
    def chat(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        n: int = 1,
        json_schema: JsonSchema | None = None,
        stop: Sequence[str] | None = None,
        api_key: str | None = None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        sampling: Sampling | None = None,
        deadline: Deadline | None = None,
    ) -> ChatResult:
        deadline = deadline or self.new_deadline()
        request = ChatRequest(
            model="",
            messages=list(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            n=n,
            json_schema=json_schema,
            stop=stop,
            api_key=api_key,
            tools=tuple(tools),
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            sampling=sampling or Sampling(),
        )

        def call(route: Route) -> ChatResult:
            prov = self.provider(route.provider)
            return self._observed(
                route, "chat", lambda: prov.chat(replace(request, model=route.model_id), deadline)
            )

        return self._with_fallbacks(model, deadline, call, request)

    def chat_stream(
        self,
        model: str,
        messages: Sequence[Message],
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        n: int = 1,
        json_schema: JsonSchema | None = None,
        stop: Sequence[str] | None = None,
        api_key: str | None = None,
        tools: Sequence[Tool] = (),
        tool_choice: ToolChoice | None = None,
        parallel_tool_calls: bool | None = None,
        sampling: Sampling | None = None,
        deadline: Deadline | None = None,
    ) -> tuple[Route, Iterator[ChatDelta]]:
        """Open a stream. Failures before the first delta are retried (and fall back); the first
        delta is fetched here so that routing and upstream errors surface before any byte is sent."""
        deadline = deadline or self.new_deadline()
        request = ChatRequest(
            model="",
            messages=list(messages),
            temperature=temperature,
            max_tokens=max_tokens,
            n=n,
            json_schema=json_schema,
            stop=stop,
            api_key=api_key,
            tools=tuple(tools),
            tool_choice=tool_choice,
            parallel_tool_calls=parallel_tool_calls,
            sampling=sampling or Sampling(),
        )

        def open_stream(route: Route) -> tuple[Route, Iterator[ChatDelta]]:
            prov = self.provider(route.provider)
            started = time.monotonic()
            it = iter(prov.chat_stream(replace(request, model=route.model_id), deadline))
            try:
                first = next(it, None)
            except AIProxyError as exc:
                self._notify(route, "chat_stream", time.monotonic() - started, None, exc.kind)
                raise
            return route, self._observe_stream(route, started, first, it)

        return self._with_fallbacks(model, deadline, open_stream, request, stream=True)

    def embed(
        self,
        model: str,
        texts: Sequence[str],
        *,
        api_key: str | None = None,
        dimensions: int | None = None,
        deadline: Deadline | None = None,
        token_ids: Sequence[Sequence[int]] | None = None,
    ) -> EmbedResult:
        """``token_ids``: the input as token arrays, ``texts`` being the same arrays decoded."""
        deadline = deadline or self.new_deadline()

        def call(route: Route) -> EmbedResult:
            prov = self.provider(route.provider)
            req = EmbedRequest(
                route.model_id, list(texts), api_key=api_key, dimensions=dimensions, token_ids=token_ids
            )
            return self._observed(route, "embed", lambda: prov.embed(req, deadline))

        return self._with_fallbacks(model, deadline, call, embed=True)

    def generate_images(
        self, model: str, request: ImageRequest, *, deadline: Deadline | None = None
    ) -> ImageResult:
        """Images for ``request``, routed by ``model``. The request is checked against the model's
        ``ImageModel`` before any upstream call (400 naming the field and what is allowed); retried
        like chat, without fallbacks (another model would paint another picture)."""
        deadline = deadline or self.new_deadline()
        route = self.resolve(model)
        if self.guard is not None:
            self.guard(model, route)
        rules = route.spec.images(route.model_id)
        if rules is None:
            raise InvalidRequestError(
                f"model {route.name} does not generate images ({route.spec.title})", field="model"
            )
        checked = rules.check(replace(request, model=route.model_id), route.name)
        prov = self.provider(route.provider)
        return self._with_retries(
            lambda: self._observed(route, "images", lambda: counted(prov.generate_images(checked, deadline))),
            deadline,
        )

    def list_models(self, provider: str, *, api_key: str | None = None) -> list[ModelInfo]:
        deadline = self.new_deadline()
        prov = self.provider(provider)
        return self._with_retries(lambda: prov.list_models(deadline, api_key), deadline)

    # --- machinery ------------------------------------------------------------------------------
    def _with_fallbacks(
        self,
        model: str,
        deadline: Deadline,
        call: Callable[[Route], T],
        chat: ChatRequest | None = None,
        *,
        stream: bool = False,
        embed: bool = False,
    ) -> T:
        """Call ``route`` then its fallbacks. For chat and embeddings, the capability check decides
        first: the model asked for must honour every feature (else 400), fallbacks that cannot are
        skipped."""
        route = self.resolve(model)
        if self.guard is not None:
            self.guard(model, route)
        chain = [route] + [self.resolve(m) for m in self.settings.model_fallbacks.get(route.name, [])]
        if chat is not None:
            capabilities.require(route, chat, stream=stream)
            chain = [route] + [c for c in chain[1:] if capabilities.missing(c, chat, stream=stream) is None]
        elif embed:
            capabilities.require_embeddings(route)
            chain = [route] + [c for c in chain[1:] if capabilities.missing_embeddings(c) is None]
        last: AIProxyError | None = None
        for i, candidate in enumerate(chain):
            try:
                return self._with_retries(lambda c=candidate: call(c), deadline)  # type: ignore[misc]
            except AIProxyError as exc:
                last = exc
                more = i + 1 < len(chain)
                fallback_worthy = exc.retryable or isinstance(exc, ProviderNotInstalledError)
                if not (more and fallback_worthy and not deadline.expired):
                    raise
                log.warning(
                    "model %s failed (%s); falling back to %s", candidate.name, exc.kind, chain[i + 1].name
                )
        assert last is not None  # unreachable: the loop returns or raises
        raise last

    def _with_retries(self, fn: Callable[[], T], deadline: Deadline) -> T:
        attempt = 0
        while True:
            deadline.check()
            try:
                return fn()
            except AIProxyError as exc:
                if not exc.retryable or attempt >= self.retry.max_retries:
                    raise
                delay = self.retry.delay(attempt, exc.retry_after)
                if delay + _attempt_headroom(deadline) >= deadline.remaining():
                    # The backoff (or the upstream's Retry-After) would end past the deadline, or
                    # leave the next attempt no time to answer: give up now with the upstream's own
                    # error (429 keeps its Retry-After), not a 504 later.
                    raise
                log.info("retrying after %s (attempt %d, %.2f s)", exc.kind, attempt + 1, delay)
                (self._sleep or time.sleep)(delay)
                if deadline.expired:
                    # The sleep overran what was left (a loaded machine wakes late): the client learns
                    # the upstream's own error, as it would had the wait not been tried, not a 504.
                    raise
                attempt += 1

    def _observed(self, route: Route, op: str, fn: Callable[[], T]) -> T:
        started = time.monotonic()
        try:
            result = fn()
        except AIProxyError as exc:
            self._notify(route, op, time.monotonic() - started, None, exc.kind)
            raise
        usage = getattr(result, "usage", None)
        self._notify(route, op, time.monotonic() - started, usage, None)
        return result

    def _observe_stream(
        self, route: Route, started: float, first: ChatDelta | None, rest: Iterator[ChatDelta]
    ) -> Iterator[ChatDelta]:
        usage: Usage | None = None
        error: str | None = None
        try:
            if first is not None:
                usage = first.usage or usage
                yield first
                for delta in rest:
                    usage = delta.usage or usage
                    yield delta
        except AIProxyError as exc:
            error = exc.kind
            raise
        finally:
            self._notify(route, "chat_stream", time.monotonic() - started, usage, error)

    def _notify(
        self, route: Route, op: str, latency: float, usage: Usage | None, error_kind: str | None
    ) -> None:
        if self.observer is not None:
            self.observer.observe_upstream(
                UpstreamCall(route.provider, route.name, op, latency, usage, error_kind)
            )
