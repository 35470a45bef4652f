from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import pytest

from lib.errors import (
    AIProxyError,
    AuthenticationError,
    InvalidRequestError,
    ProviderNotInstalledError,
    RateLimitedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    Message,
    ModelInfo,
    Provider,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.gateway import Gateway, ObserverChain, RetryPolicy, UpstreamCall
from lib.providers.images import GeneratedImage, ImageRequest, ImageResult
from tests.conftest import make_settings


@dataclass
class Scripted:
    """A provider that fails with the scripted errors, then answers."""

    name: str = "openai"
    errors: list[AIProxyError] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)

    def _next(self, model: str) -> None:
        self.calls.append(model)
        if self.errors:
            raise self.errors.pop(0)

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        self._next(request.model)
        return ChatResult(request.model, self.name, [Choice(0, "ok", "stop")], Usage(3, 1))

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        self._next(request.model)
        yield ChatDelta(text="o")
        yield ChatDelta(text="k", finish_reason="stop", usage=Usage(3, 2))

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        self._next(request.model)
        return EmbedResult(request.model, self.name, [[1.0, 0.0] for _ in request.texts], Usage(2, 0))

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        return []

    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        self._next(f"{request.model} {request.size}")
        return ImageResult(request.model, self.name, [GeneratedImage(b"png")])


class Observer:
    def __init__(self) -> None:
        self.events: list[dict[str, object]] = []

    def observe_upstream(self, call: UpstreamCall) -> None:
        self.events.append({f.name: getattr(call, f.name) for f in fields(call)})


def gateway(provider: Scripted, sleeps: list[float] | None = None, **settings: object) -> Gateway:
    s = make_settings(**settings)
    return Gateway(
        s,
        factories={provider.name: lambda _s: provider},
        observer=Observer(),
        sleep=(sleeps.append if sleeps is not None else (lambda _x: None)),
    )


def test_scripted_provider_satisfies_the_protocol() -> None:
    assert isinstance(Scripted(), Provider)


def test_retries_retryable_errors_then_succeeds() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down"), RateLimitedError("slow", retry_after=1.5)])
    sleeps: list[float] = []
    result = gateway(prov, sleeps).chat("gpt-4o", [Message("user", "hi")])
    assert result.choices[0].text == "ok"
    assert len(prov.calls) == 3
    assert len(sleeps) == 2
    assert sleeps[1] >= 1.5  # Retry-After honoured


@pytest.mark.parametrize("exc", [InvalidRequestError("bad"), AuthenticationError("no")])
def test_never_retries_caller_or_auth_errors(exc: AIProxyError) -> None:
    prov = Scripted(errors=[exc])
    with pytest.raises(type(exc)):
        gateway(prov).chat("gpt-4o", [Message("user", "hi")])
    assert len(prov.calls) == 1


def test_gives_up_after_max_retries() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down")] * 10)
    with pytest.raises(UpstreamUnavailableError):
        gateway(prov, max_retries=2).chat("gpt-4o", [Message("user", "hi")])
    assert len(prov.calls) == 3


def test_does_not_sleep_past_the_deadline() -> None:
    prov = Scripted(errors=[RateLimitedError("slow", retry_after=30)])
    started = time.monotonic()
    with pytest.raises(RateLimitedError) as info:
        gateway(prov).chat("gpt-4o", [Message("user", "hi")], deadline=Deadline(2))
    assert time.monotonic() - started < 1
    assert info.value.retry_after == 30
    assert len(prov.calls) == 1


def test_a_backoff_that_wakes_past_the_deadline_reports_the_upstream_error() -> None:
    # The wait fitted when it began but the sleep overran it (a loaded machine wakes late): the
    # client gets the upstream's 429 with its Retry-After, not a 504, and no further attempt is made.
    prov = Scripted(errors=[RateLimitedError("slow", retry_after=0.05)] * 3)
    s = make_settings()
    gw = Gateway(s, factories={prov.name: lambda _s: prov}, sleep=lambda _x: time.sleep(0.15))
    with pytest.raises(RateLimitedError) as info:
        gw.chat("gpt-4o", [Message("user", "hi")], deadline=Deadline(0.1))
    assert info.value.retry_after == 0.05
    assert len(prov.calls) == 1


def test_expired_deadline_is_a_timeout() -> None:
    prov = Scripted()
    d = Deadline(0.001)
    time.sleep(0.01)
    with pytest.raises(UpstreamTimeoutError):
        gateway(prov).chat("gpt-4o", [Message("user", "hi")], deadline=d)
    assert prov.calls == []


def test_fallback_chain_after_retries() -> None:
    openai_prov = Scripted("openai", errors=[UpstreamUnavailableError("down")] * 5)
    local_prov = Scripted("local")
    s = make_settings(max_retries=1, model_fallbacks='{"gpt-4o": ["local"]}')
    gw = Gateway(
        s, factories={"openai": lambda _s: openai_prov, "local": lambda _s: local_prov}, sleep=lambda _x: None
    )
    result = gw.chat("gpt-4o", [Message("user", "hi")])
    assert result.provider == "local"
    assert len(openai_prov.calls) == 2 and len(local_prov.calls) == 1


def test_no_fallback_for_caller_errors() -> None:
    openai_prov = Scripted("openai", errors=[InvalidRequestError("bad")])
    local_prov = Scripted("local")
    s = make_settings(model_fallbacks='{"gpt-4o": ["local"]}')
    gw = Gateway(s, factories={"openai": lambda _s: openai_prov, "local": lambda _s: local_prov})
    with pytest.raises(InvalidRequestError):
        gw.chat("gpt-4o", [Message("user", "hi")])
    assert local_prov.calls == []


def test_missing_provider_is_not_installed() -> None:
    gw = Gateway(make_settings(), factories={})
    with pytest.raises(ProviderNotInstalledError):
        gw.embed("local", ["x"])


def test_stream_errors_before_first_delta_are_retried() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down")])
    gw = gateway(prov)
    route, deltas = gw.chat_stream("gpt-4o", [Message("user", "hi")])
    assert route.provider == "openai"
    assert "".join(d.text for d in deltas) == "ok"
    assert len(prov.calls) == 2


def test_observer_sees_latency_usage_and_errors() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down")])
    gw = gateway(prov)
    gw.embed("text-embedding-3-small", ["a", "b"])
    events = gw.observer.events  # type: ignore[union-attr]
    assert [e["error_kind"] for e in events] == ["upstream_unavailable", None]
    assert events[1]["usage"] == Usage(2, 0)
    assert events[1]["model"] == "text-embedding-3-small"


def test_added_observers_see_every_call_in_the_order_added() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down")])
    gw = gateway(prov)
    first = gw.observer
    assert isinstance(first, Observer)
    order: list[str] = []

    class Named(Observer):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        def observe_upstream(self, call: UpstreamCall) -> None:
            order.append(self.name)
            super().observe_upstream(call)

    ledger, limits = Named("ledger"), Named("limits")
    gw.add_observer(ledger)
    gw.add_observer(limits)
    assert isinstance(gw.observer, ObserverChain) and gw.observer.observers[0] is first
    gw.embed("text-embedding-3-small", ["a"])
    assert order == ["ledger", "limits", "ledger", "limits"]  # the retried attempt, then the answer
    assert first.events == ledger.events == limits.events
    assert [e["error_kind"] for e in limits.events] == ["upstream_unavailable", None]
    bare = Gateway(make_settings())
    bare.add_observer(ledger)
    assert bare.observer is ledger


def test_default_models(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(var, raising=False)
    assert Gateway(make_settings()).default_model("chat") == "local"
    assert (
        Gateway(make_settings(openai_api_key="sk-x")).default_model("embedding") == "text-embedding-3-small"
    )
    aws = Gateway(make_settings(aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="example-secret"))
    assert aws.default_model("assessment") == "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert Gateway(make_settings(default_chat_model="gpt-4o")).default_model("chat") == "gpt-4o"


def test_backoff_is_bounded_and_jittered() -> None:
    policy = RetryPolicy(max_retries=5, base_delay=0.5, max_delay=4)
    delays = [policy.delay(attempt, None) for attempt in range(8) for _ in range(20)]
    assert all(0 <= d <= 4 for d in delays)
    assert len({round(d, 6) for d in delays}) > 50


def test_images_are_checked_retried_observed_and_guarded() -> None:
    prov = Scripted(errors=[UpstreamUnavailableError("down")])
    gw = gateway(prov)
    result = gw.generate_images("dall-e-3", ImageRequest("ignored", "a fox"))
    assert result.images[0].data == b"png"
    assert prov.calls == ["dall-e-3 1024x1024"] * 2  # the model's default size, retried once
    observer = gw.observer
    assert isinstance(observer, Observer)
    assert observer.events[-1]["operation"] == "images" and observer.events[-1]["error_kind"] is None
    with pytest.raises(InvalidRequestError, match="1024x1792"):
        gw.generate_images("dall-e-3", ImageRequest("", "a fox", size="256x256"))

    def refuse(_model: str, _route: object) -> None:
        raise InvalidRequestError("not on this key's list", field="model")

    gw.guard = refuse
    with pytest.raises(InvalidRequestError, match="not on this key"):
        gw.generate_images("dall-e-3", ImageRequest("", "a fox"))
    assert len(prov.calls) == 2
