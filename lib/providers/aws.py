"""What the boto3 providers (Bedrock, SageMaker) share: the client, and calls bounded by the deadline.

botocore has no per-call timeout and no hook into its socket reads, so both providers hold their
calls to the request's deadline the same way (see ``lib.providers.deadline``): every call runs on the
provider's ``DaemonPool`` (in ``call_bounded``) while the caller waits at most ``remaining()``
(``gather``); a response stream is read by a pool thread into a queue the caller drains with the same
deadline, and is shut down when the caller gives up (``EventPump``). ``BotoProvider`` is the base of
both providers: their pool, ``n`` choices as parallel calls, and a stream pumped within the deadline.
Keeping this in one module means a fix to the deadline handling reaches every AWS provider at once.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from functools import partial
from typing import Any, TypeVar

import boto3
from botocore import exceptions as bce
from botocore.config import Config

from lib.errors import (
    AIProxyError,
    AuthenticationError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    UpstreamTimeoutError,
)
from lib.providers.base import ChatDelta, ChatResult, Choice, Usage
from lib.providers.bedrock.pool import DaemonPool
from lib.providers.deadline import Deadline, call_bounded
from lib.settings import Settings

T = TypeVar("T")
#: Most parallel calls one chat request may fan out to (``n``): the services answer one choice a call.
MAX_CHOICES = 16
Translate = Callable[[BaseException], AIProxyError]


def client_config(settings: Settings) -> Config:
    """botocore retries off (the gateway retries), timeouts and pool from settings."""
    return Config(
        region_name=settings.aws_region,
        # total_max_attempts counts the first try; botocore's "max_attempts" counts *retries*
        retries={"total_max_attempts": 1, "mode": "standard"},
        connect_timeout=min(settings.upstream_connect_timeout_seconds, settings.request_deadline_seconds),
        read_timeout=settings.request_deadline_seconds,
        max_pool_connections=settings.upstream_pool_size,
        tcp_keepalive=True,
        user_agent_extra="aiproxy",
    )


def build_client(
    settings: Settings, service: str, provider: str, endpoint_url: str | None, translate: Translate
) -> Any:
    """A boto3 client for ``service`` from explicit keys / ``AWS_PROFILE`` in settings, else boto3's
    default credential chain; ``endpoint_url`` None lets botocore read ``AWS_ENDPOINT_URL_<SERVICE>``
    itself. Credential/profile problems become ``AuthenticationError``."""
    session_kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    if (settings.aws_access_key_id is None) != (settings.aws_secret_access_key is None):
        # load_settings refuses this at start-up; settings built around it must not fall back to
        # another identity from the default credential chain.
        raise AuthenticationError(
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together", provider=provider
        )
    if settings.aws_access_key_id is not None and settings.aws_secret_access_key is not None:
        session_kwargs["aws_access_key_id"] = settings.aws_access_key_id.get_secret_value()
        session_kwargs["aws_secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
        if settings.aws_session_token is not None:
            session_kwargs["aws_session_token"] = settings.aws_session_token.get_secret_value()
    elif settings.aws_profile:
        session_kwargs["profile_name"] = settings.aws_profile
    client_kwargs: dict[str, Any] = {"config": client_config(settings)}
    if endpoint_url:
        client_kwargs["endpoint_url"] = endpoint_url
    try:
        session = boto3.session.Session(**session_kwargs)
        return session.client(service, **client_kwargs)
    except (bce.BotoCoreError, ValueError) as exc:
        raise translate(exc) from None


def interrupt(stream: Any) -> None:
    """Unblock a pool thread reading ``stream`` (a botocore ``EventStream``) by shutting its socket down.

    ``close()`` from another thread would wait for the blocked read (the reader holds the buffer's
    lock); urllib3's ``HTTPResponse.shutdown()`` exists for exactly this."""
    raw = getattr(stream, "_raw_stream", None)
    shutdown = getattr(raw, "shutdown", None)
    if callable(shutdown):
        with contextlib.suppress(Exception):  # already released or closed: nothing to unblock
            shutdown()


def close_stream(response: Any, key: str) -> None:
    """Close the event stream under ``key`` of a response nobody waits for any more."""
    stream = response.get(key) if isinstance(response, Mapping) else None
    if stream is not None:
        with contextlib.suppress(Exception):
            stream.close()


def _abandoned_result(handler: Callable[[Any], None], future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        handler(future.result())


def gather(
    pool: DaemonPool,
    calls: Sequence[Callable[[], T]],
    deadline: Deadline,
    *,
    translate: Translate,
    timeout_error: Callable[[], AIProxyError],
    limit: int = 1,
    on_abandoned: Callable[[Any], None] | None = None,
) -> list[T]:
    """Run ``calls`` on ``pool`` (at most ``limit`` at once) and return their results in order.

    Waits no longer than the deadline (then raises ``timeout_error()``); the first failure is
    translated and raised (calls not yet started are cancelled; ``on_abandoned`` gets the result of a
    running one when it arrives)."""
    if deadline.expired:
        raise timeout_error()
    results: list[Any] = [None] * len(calls)
    pending = iter(enumerate(calls))
    running: dict[Future[T], int] = {}

    def fill() -> None:
        while len(running) < max(1, limit):
            nxt = next(pending, None)
            if nxt is None:
                return
            running[pool.submit(partial(call_bounded, nxt[1], deadline))] = nxt[0]

    try:
        fill()
        while running:
            done, _ = wait(running, timeout=deadline.remaining(), return_when=FIRST_COMPLETED)
            if not done:
                raise timeout_error()
            for future in done:
                index = running.pop(future)
                exc = future.exception()
                if exc is not None:
                    raise translate(exc) from exc
                results[index] = future.result()
            fill()
    finally:
        for future in running:
            if not future.cancel() and on_abandoned is not None:
                future.add_done_callback(partial(_abandoned_result, on_abandoned))
    return results


class EventPump:
    """Reads a botocore ``EventStream`` on a pool thread into a queue that the caller drains with the
    request's deadline; ``abandon()`` (deadline, upstream error, caller gone) stops the reader at once."""

    def __init__(self, pool: DaemonPool, stream: Any) -> None:
        self._stream = stream
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        pool.submit(self._pump)

    def _pump(self) -> None:
        try:
            for event in self._stream:
                if self._stop.is_set():
                    return
                self._events.put(("event", event))
        except Exception as exc:  # noqa: BLE001 - handed over to the consumer
            self._events.put(("error", exc))
        else:
            self._events.put(("end", None))
        finally:
            with contextlib.suppress(Exception):  # best effort: the answer is complete or abandoned
                self._stream.close()

    def events(
        self, deadline: Deadline, timeout_error: Callable[[], AIProxyError], translate: Translate
    ) -> Iterator[Any]:
        """The stream's events until its end; an upstream failure is translated and raised."""
        while True:
            try:
                kind, item = self._events.get(timeout=deadline.remaining())
            except queue.Empty:
                raise timeout_error() from None
            if kind == "error":
                raise translate(item)
            if kind == "end":
                return
            yield item

    def abandon(self) -> None:
        self._stop.set()
        interrupt(self._stream)


class BotoProvider:
    """The part of a boto3 provider that does not depend on the service's request format.

    Subclasses set ``name``, ``service`` (the boto3 client's) and ``subject`` (how a timeout names
    the model: "Bedrock model"), and implement ``_endpoint_url`` (the service's endpoint setting:
    None lets botocore read the environment itself) and ``_translate`` (its errors in the taxonomy).
    ``client`` replaces the client built from settings (tests)."""

    name: str
    service: str
    subject: str

    def __init__(self, settings: Settings, *, client: Any | None = None) -> None:
        self.settings = settings
        if client is None:
            translate = partial(self._translate, model="-")
            client = build_client(settings, self.service, self.name, self._endpoint_url(settings), translate)
        self.client = client
        self._pool = DaemonPool(settings.upstream_pool_size, self.name)

    def _endpoint_url(self, settings: Settings) -> str | None:
        raise NotImplementedError

    def close(self) -> None:
        """Stop accepting work and drop idle connections (calls in flight finish on their own)."""
        self._pool.shutdown()
        self.client.close()

    def _translate(self, exc: BaseException, model: str) -> AIProxyError:
        raise NotImplementedError

    def _deadline_error(self, deadline: Deadline, model: str) -> UpstreamTimeoutError:
        return UpstreamTimeoutError(
            f"{self.subject} {model} did not answer within the {deadline.seconds:g} s request deadline",
            provider=self.name,
            model=model,
        )

    def _gather(
        self,
        calls: Sequence[Callable[[], T]],
        deadline: Deadline,
        model: str,
        *,
        limit: int = 1,
        on_abandoned: Callable[[Any], None] | None = None,
    ) -> list[T]:
        """``gather`` on this provider's pool, failures translated naming ``model``."""
        return gather(
            self._pool,
            calls,
            deadline,
            translate=lambda exc: self._translate(exc, model),
            timeout_error=lambda: self._deadline_error(deadline, model),
            limit=limit,
            on_abandoned=on_abandoned,
        )

    def _check_choices(self, n: int) -> None:
        """Refuse ``n`` outside 1..MAX_CHOICES before anything else is built or called."""
        if not 1 <= n <= MAX_CHOICES:
            raise InvalidRequestError(f"n must be between 1 and {MAX_CHOICES} for {self.subject}s", field="n")

    def _choices(
        self, calls: Sequence[Callable[[], tuple[Choice, Usage]]], deadline: Deadline, model: str
    ) -> ChatResult:
        """All ``calls`` at once, one choice each (the services answer one choice per call)."""
        started = time.monotonic()
        outcomes = self._gather(calls, deadline, model, limit=len(calls))
        usage = Usage()
        for _, u in outcomes:
            usage = usage + u
        return ChatResult(
            model=model,
            provider=self.name,
            choices=[choice for choice, _ in outcomes],
            usage=usage,
            latency_s=time.monotonic() - started,
        )

    def _pumped(
        self,
        response: Any,
        key: str,
        deadline: Deadline,
        model: str,
        *,
        deltas: Callable[[Iterator[Any]], Iterator[ChatDelta]],
        missing: str,
    ) -> Generator[ChatDelta, None, None]:
        """``deltas`` of the events of the stream under ``key`` of ``response``, read within the
        deadline (``missing``: the error when there is none); a stream left unfinished is abandoned."""
        stream = response.get(key) if isinstance(response, Mapping) else None
        if stream is None:
            raise InvalidUpstreamResponseError(missing, provider=self.name, model=model)
        pump = EventPump(self._pool, stream)
        finished = False
        try:
            events = pump.events(
                deadline,
                lambda: self._deadline_error(deadline, model),
                lambda exc: self._translate(exc, model),
            )
            yield from deltas(events)
            finished = True
        finally:
            if not finished:  # deadline, upstream error or the caller went away: stop reading now
                pump.abandon()
