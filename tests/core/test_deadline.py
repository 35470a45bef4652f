"""The request deadline holds over the whole upstream exchange, in plain threads (no gevent).

The upstream is ``tests.support.trickle`` (raw HTTP over asyncio sockets, not the project's mocks): a
valid answer one byte every 0.2 s, so every single read is far inside any per-read timeout and only a
deadline over the whole exchange ends it. The real ``openai`` SDK, ``httpx2`` and ``boto3`` make the
calls. Margins are generous (a shared machine): the trickled answers would take over 40 s.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest

from lib.errors import InvalidUpstreamResponseError, RateLimitedError, UpstreamTimeoutError
from lib.providers.base import ChatRequest, EmbedRequest, Message
from lib.providers.deadline import Deadline, bind, call_bounded, current, unbind
from lib.providers.gateway import Gateway
from lib.providers.openai import OpenAIProvider
from lib.providers.openai.transport import DeadlineTransport
from tests.conftest import make_settings
from tests.support.trickle import TrickleUpstream, wait_for

DEADLINE = 1.0
SLACK = 1.0  # the answer must come within DEADLINE + SLACK
HELLO = [Message("user", "hello")]


@pytest.fixture
def upstream() -> Iterator[TrickleUpstream]:
    with TrickleUpstream("trickle", interval=0.2) as up:
        yield up


def _openai(up: TrickleUpstream, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider(make_settings(openai_api_key="sk-x", openai_base_url=up.openai_base_url, **kw))


def _timed(fn: Any) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        fn()
    except BaseException as exc:
        return time.monotonic() - started, exc
    return time.monotonic() - started, None


# --- the mechanism ------------------------------------------------------------------------------


def test_clamp_shortens_to_the_time_left_and_reports_none_when_it_is_gone() -> None:
    d = Deadline(10.0)
    assert d.clamp(2.0) == 2.0
    assert 9.0 < (d.clamp(60.0) or 0) <= 10.0
    assert 9.0 < (d.clamp(None) or 0) <= 10.0
    gone = Deadline(0.0)
    assert gone.clamp(5.0) is None and gone.clamp(None) is None


def test_call_bounded_without_gevent_is_a_plain_call() -> None:
    """No monkey-patched sockets: nothing to interrupt with, so the call runs as it is."""
    assert call_bounded(lambda: 7, Deadline(0.0)) == 7
    empty: dict[str, int] = {}
    with pytest.raises(KeyError):
        call_bounded(lambda: empty["x"], Deadline(5.0))


def test_transport_ends_a_trickled_answer_at_the_bound_deadline(upstream: TrickleUpstream) -> None:
    """httpx2 with a 30 s per-read timeout: each byte comes in 0.2 s, so only the deadline ends it."""
    client = httpx2.Client(transport=DeadlineTransport(limits=httpx2.Limits()), timeout=30.0)
    token = bind(Deadline(DEADLINE))
    try:
        seconds, exc = _timed(lambda: client.post(upstream.openai_base_url + "/embeddings", json={}))
    finally:
        unbind(token)
    assert isinstance(exc, httpx2.ReadTimeout), exc
    assert DEADLINE - 0.05 <= seconds < DEADLINE + SLACK
    assert current() is None


def test_transport_without_a_bound_deadline_is_the_stock_transport() -> None:
    """No deadline bound: the per-read timeout is the only limit (a normal answer arrives)."""
    with TrickleUpstream("trickle", interval=0.0) as up:
        client = httpx2.Client(transport=DeadlineTransport(limits=httpx2.Limits()), timeout=5.0)
        r = client.post(up.openai_base_url + "/embeddings", json={"model": "m"})
        assert r.status_code == 200 and r.json()["data"][0]["embedding"] == [0.6, 0.8]


def test_connect_is_bounded_too() -> None:
    """A listener that never accepts (backlog full): connecting ends at the deadline, not at the
    client's connect timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):  # fill the accept queue so that further SYNs get no answer
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(listener.getsockname())
            fillers.append(s)
        client = httpx2.Client(transport=DeadlineTransport(limits=httpx2.Limits()), timeout=30.0)
        port = listener.getsockname()[1]
        token = bind(Deadline(DEADLINE))
        try:
            seconds, exc = _timed(lambda: client.get(f"http://127.0.0.1:{port}/"))
        finally:
            unbind(token)
        assert isinstance(exc, httpx2.TimeoutException | httpx2.ReadTimeout), exc
        assert seconds < DEADLINE + SLACK
    finally:
        for s in fillers:
            s.close()
        listener.close()


# --- the OpenAI provider (official SDK) ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["trickle", "trickle_head"])
def test_openai_chat_and_embeddings_end_at_the_deadline(upstream: TrickleUpstream, mode: str) -> None:
    upstream.mode = mode
    prov = _openai(upstream)
    for call in (
        lambda: prov.chat(ChatRequest("gpt-4o", HELLO), Deadline(DEADLINE)),
        lambda: prov.embed(EmbedRequest("text-embedding-3-small", ["hello"]), Deadline(DEADLINE)),
    ):
        seconds, exc = _timed(call)
        assert isinstance(exc, UpstreamTimeoutError), exc
        assert seconds < DEADLINE + SLACK
        assert wait_for(lambda: upstream.open_connections == 0), "the connection is dropped at the deadline"


def test_openai_stream_that_started_ends_at_the_deadline(upstream: TrickleUpstream) -> None:
    prov = _openai(upstream)
    started = time.monotonic()
    deltas = prov.chat_stream(ChatRequest("gpt-4o", HELLO), Deadline(DEADLINE))
    first = next(iter(deltas))
    assert first.text == "slow"  # the first event came at once; the rest trickles
    with pytest.raises(UpstreamTimeoutError):
        for _ in deltas:
            pass
    assert time.monotonic() - started < DEADLINE + SLACK
    assert wait_for(lambda: upstream.open_connections == 0), "the connection is dropped, not left reading"


def test_each_thread_keeps_its_own_deadline(upstream: TrickleUpstream) -> None:
    """Two threads on one SDK client (one connection pool): each call ends at its own deadline."""
    prov = _openai(upstream)
    took: dict[float, tuple[float, BaseException | None]] = {}

    def call(seconds: float) -> None:
        took[seconds] = _timed(lambda: prov.chat(ChatRequest("gpt-4o", HELLO), Deadline(seconds)))

    threads = [threading.Thread(target=call, args=(s,)) for s in (0.8, 2.4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    short, long_ = took[0.8], took[2.4]
    assert isinstance(short[1], UpstreamTimeoutError) and isinstance(long_[1], UpstreamTimeoutError)
    assert short[0] < 0.8 + SLACK
    assert 2.4 - 0.05 <= long_[0] < 2.4 + SLACK


@pytest.mark.parametrize("mode", ["garbage", "garbage_text"])
def test_openai_stream_with_garbage_after_the_first_chunk_is_an_error(
    upstream: TrickleUpstream, mode: str
) -> None:
    upstream.mode = mode
    prov = _openai(upstream)
    deltas = iter(prov.chat_stream(ChatRequest("gpt-4o", HELLO), Deadline(5.0)))
    assert next(deltas).text == "slow"
    with pytest.raises(InvalidUpstreamResponseError):
        for _ in deltas:
            pass


# --- retries ------------------------------------------------------------------------------------


def test_retry_after_longer_than_the_time_left_gives_up_at_once() -> None:
    """429 with Retry-After 30 and 2 s left: the 429 (with its Retry-After) now, no sleep, no retry."""
    with TrickleUpstream("ratelimit", retry_after=30) as up:
        gw = Gateway(make_settings(openai_api_key="sk-x", openai_base_url=up.openai_base_url))
        seconds, exc = _timed(lambda: gw.embed("text-embedding-3-small", ["x"], deadline=Deadline(2.0)))
        assert isinstance(exc, RateLimitedError) and exc.retry_after == 30, exc
        assert seconds < 1.0
        assert up.hits["/v1/embeddings"] == 1


def test_retries_never_sleep_past_the_deadline() -> None:
    """Retry-After 0.7 s with a 2 s deadline: two retries fit, the third would not; done in < 2 s."""
    with TrickleUpstream("ratelimit", retry_after=0.7) as up:
        gw = Gateway(make_settings(openai_api_key="sk-x", openai_base_url=up.openai_base_url, max_retries=10))
        seconds, exc = _timed(lambda: gw.chat("gpt-4o", HELLO, deadline=Deadline(2.0)))
        assert isinstance(exc, RateLimitedError), exc
        assert 1.4 <= seconds < 2.0
        assert up.hits["/v1/chat/completions"] == 3


def test_backoff_uses_the_sleep_in_force_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Gevent patches time.sleep after import: the gateway must not have bound the original."""
    slept: list[float] = []
    with TrickleUpstream("ratelimit", retry_after=0.01) as up:
        gw = Gateway(make_settings(openai_api_key="sk-x", openai_base_url=up.openai_base_url, max_retries=2))
        monkeypatch.setattr(time, "sleep", slept.append)
        with pytest.raises(RateLimitedError):
            gw.chat("gpt-4o", HELLO, deadline=Deadline(5.0))
    assert len(slept) == 2


# --- the Bedrock provider (boto3) ---------------------------------------------------------------

SONNET = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"


def _bedrock(up: TrickleUpstream) -> Any:
    from lib.providers.bedrock import BedrockProvider

    return BedrockProvider(
        make_settings(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_region="us-east-1",
            aws_endpoint_url_bedrock_runtime=up.bedrock_endpoint_url,
        )
    )


def test_bedrock_converse_and_embeddings_end_at_the_deadline(upstream: TrickleUpstream) -> None:
    prov = _bedrock(upstream)
    for call in (
        lambda: prov.chat(ChatRequest(SONNET, HELLO), Deadline(DEADLINE)),
        lambda: prov.embed(EmbedRequest("amazon.titan-embed-text-v2:0", ["hello"]), Deadline(DEADLINE)),
    ):
        seconds, exc = _timed(call)
        assert isinstance(exc, UpstreamTimeoutError), exc
        assert seconds < DEADLINE + SLACK


def test_bedrock_stream_that_started_ends_at_the_deadline(upstream: TrickleUpstream) -> None:
    prov = _bedrock(upstream)
    started = time.monotonic()
    deltas = iter(prov.chat_stream(ChatRequest(SONNET, HELLO), Deadline(DEADLINE)))
    assert next(deltas).text == "slow"
    with pytest.raises(UpstreamTimeoutError):
        for _ in deltas:
            pass
    assert time.monotonic() - started < DEADLINE + SLACK
    assert wait_for(lambda: upstream.open_connections == 0), "the stream's socket is shut down"


@pytest.mark.parametrize("mode", ["garbage", "garbage_text"])
def test_bedrock_stream_with_garbage_after_the_first_event_is_an_error(
    upstream: TrickleUpstream, mode: str
) -> None:
    upstream.mode = mode
    prov = _bedrock(upstream)
    deltas = iter(prov.chat_stream(ChatRequest(SONNET, HELLO), Deadline(5.0)))
    assert next(deltas).text == "slow"
    with pytest.raises(InvalidUpstreamResponseError):
        for _ in deltas:
            pass


# --- the same under gevent monkey-patching (what the gunicorn worker runs) ----------------------

GEVENT_SCRIPT = """
from gevent import monkey
monkey.patch_all()

import json, sys, time
from lib.providers.base import ChatRequest, Message
from lib.providers.bedrock import BedrockProvider
from lib.providers.deadline import Deadline
from lib.providers.openai import OpenAIProvider
from lib.settings import load_settings

port = int(sys.argv[1])
settings = load_settings(
    config_file="/nonexistent", openai_api_key="sk-x", openai_base_url=f"http://127.0.0.1:{port}/v1",
    aws_access_key_id="testing", aws_secret_access_key="testing", aws_region="us-east-1",
    aws_endpoint_url_bedrock_runtime=f"http://127.0.0.1:{port}",
)
out = {}
for name, prov, model in (
    ("openai", OpenAIProvider(settings), "gpt-4o"),
    ("bedrock", BedrockProvider(settings), "us.anthropic.claude-sonnet-4-5-20250929-v1:0"),
):
    t = time.monotonic()
    try:
        prov.chat(ChatRequest(model, [Message("user", "hi")]), Deadline(1.0))
        out[name] = ["answered", time.monotonic() - t]
    except Exception as exc:
        out[name] = [type(exc).__name__, time.monotonic() - t]
    time.sleep(0.5)  # let an interrupted call drop its connection
    sys.stdout.write(json.dumps({name: out[name]}) + "\\n")
    sys.stdout.flush()
    sys.stdin.readline()  # the parent has counted the open connections
"""


def test_under_gevent_the_abandoned_calls_stop_and_drop_their_connections(upstream: TrickleUpstream) -> None:
    """The gunicorn worker's situation: OpenAI and Bedrock calls end at the deadline, and neither
    leaves a connection reading the trickle (Bedrock: ``call_bounded``'s gevent.Timeout)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "AWS_EC2_METADATA_DISABLED": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-c", GEVENT_SCRIPT, str(upstream.port)],
        cwd=root,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        for name in ("openai", "bedrock"):
            line = proc.stdout.readline()
            assert line, f"the gevent script died before {name}"
            kind, seconds = json.loads(line)[name]
            assert kind == "UpstreamTimeoutError", (name, kind)
            assert seconds < DEADLINE + SLACK, (name, seconds)
            assert wait_for(lambda: upstream.open_connections == 0), f"{name} left its connection open"
            proc.stdin.write("\n")
            proc.stdin.flush()
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
