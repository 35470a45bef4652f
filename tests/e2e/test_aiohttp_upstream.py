"""The real service under gunicorn against an independently written OpenAI stand-in (aiohttp, its own
process): answers the official SDK can parse, and upstream calls that do not serialise.

Issue 12: against an aiohttp stand-in, 1,000 concurrent 2-s calls took 61 s, about 32 in flight at
once. Two causes were found and fixed: httpcore2's pool probed each idle connection with ``select.poll``
while holding its lock, and gevent turned each probe into a hub switch, so the worker's other upstream
calls queued on that lock (``lib/providers/openai/transport.py``); and the SDK's first call ran
``uname -p`` in a subprocess, so every concurrent first call of a cold worker forked its own
(``lib/providers/openai/provider.py``). The checks here count, they do not time: the stand-in's own
count of requests in flight at once, greenlet switches during the probe, the SDK's cached headers.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator

import openai
import pytest

from lib.providers.openai.transport import is_readable
from tests.support.aiohttp_openai import AiohttpOpenAI
from tests.support.server import REPO, Service

pytestmark = pytest.mark.e2e
KEY = "e2e-aiohttp-key"
CHAT = json.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello concurrency"}]}
).encode()


@pytest.fixture(scope="module")
def upstream() -> Iterator[AiohttpOpenAI]:
    with AiohttpOpenAI() as mock:
        yield mock


@pytest.fixture(scope="module")
def service(upstream: AiohttpOpenAI) -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "OPENAI_API_KEY": "sk-e2e-aiohttp",
        "OPENAI_BASE_URL": upstream.base_url,
        "REQUEST_DEADLINE_SECONDS": "30",
    }
    with Service(env, workers=2) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0)


def _post_chats(port: int, count: int) -> list[int | str]:
    """``count`` chat requests at once, each on its own connection; their statuses (or errors)."""
    results: list[int | str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def one() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            barrier.wait()
            conn.request(
                "POST",
                "/v1/chat/completions",
                CHAT,
                {"Authorization": KEY, "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            outcome: int | str = resp.status
        except Exception as exc:  # every failure is counted, none hidden
            outcome = type(exc).__name__
        finally:
            conn.close()
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=one, daemon=True) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    return results


def test_chat_through_service(sdk: openai.OpenAI) -> None:
    r = sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "two choices please"}], n=2
    )
    assert [c.message.content for c in r.choices] == ["You said: two choices please"] * 2
    assert [c.finish_reason for c in r.choices] == ["stop", "stop"]
    assert r.usage is not None and r.usage.completion_tokens == 10 and r.usage.prompt_tokens > 0


def test_stream_through_service(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_embeddings_through_service(sdk: openai.OpenAI) -> None:
    floats = sdk.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "alpha"])
    vectors = [d.embedding for d in floats.data]
    assert [d.index for d in floats.data] == [0, 1, 2]
    assert len(vectors[0]) == 16 and vectors[0] == vectors[2] != vectors[1]
    assert abs(sum(x * x for x in vectors[0]) - 1.0) < 1e-6
    # The SDK asks for base64 by default and decodes it: the same vector, to float32 precision.
    packed = sdk.embeddings.create(model="text-embedding-3-small", input="alpha")
    assert max(abs(a - b) for a, b in zip(packed.data[0].embedding, vectors[0], strict=True)) < 1e-6


def test_openai_model_list_through_service(service: Service) -> None:
    """``GET /openai/models`` is the one route that reads the upstream's model list."""
    conn = http.client.HTTPConnection("127.0.0.1", service.port, timeout=30)
    try:
        conn.request("GET", "/openai/models", headers={"Authorization": KEY})
        resp = conn.getresponse()
        body = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200, body
    assert [m["id"] for m in body["data"]] == ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small"]


def test_concurrent_calls_are_in_flight_upstream_at_once(service: Service, upstream: AiohttpOpenAI) -> None:
    # First leave idle keep-alive connections in both workers' pools: each pool update probes
    # every idle connection, which is where the calls serialised.
    assert _post_chats(service.port, 64) == [200] * 64
    # Each call takes 3 s upstream: long enough for all 200 to arrive on a busy machine, so the
    # count measures serialisation, not how fast this machine forwards a burst.
    upstream.set_delay(3.0)
    upstream.reset()
    try:
        results = _post_chats(service.port, 200)
    finally:
        upstream.set_delay(0.0)
    stats = upstream.stats()
    assert sorted(results, key=str) == [200] * 200, {str(r) for r in results}
    assert stats["by_path"] == {"/v1/chat/completions": 200}
    assert stats["max_in_flight"] >= 150, stats


PROBE_SCRIPT = """
from gevent import monkey

monkey.patch_all()
import sys

import gevent
import greenlet
import httpx2

from lib.providers.openai.transport import DeadlineTransport

url = sys.argv[1]
transport = DeadlineTransport(limits=httpx2.Limits(max_connections=16, max_keepalive_connections=16))
client = httpx2.Client(transport=transport, headers={"Authorization": "Bearer probe"})
gevent.joinall([gevent.spawn(client.get, url) for _ in range(8)], raise_error=True)
idle = [c for c in transport._pool.connections if c.is_idle()]
switches = 0


def count(event, args):
    global switches
    if event in ("switch", "throw"):
        switches += 1


greenlet.settrace(count)
expired = [c.has_expired() for c in idle]
greenlet.settrace(None)
print(len(idle), switches, sum(expired))
"""


def test_idle_connection_probe_does_not_yield_to_the_hub(upstream: AiohttpOpenAI) -> None:
    """Under gevent, checking whether idle pooled connections were closed by the server must not
    switch greenlets: httpcore2 does it while holding the pool's lock."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE_SCRIPT, upstream.base_url + "/models"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    idle, switches, expired = (int(x) for x in out)
    assert idle >= 2  # several keep-alive connections were probed
    assert expired == 0  # the server keeps them open: none reads as closed
    assert switches == 0


def test_is_readable_reports_data_end_of_file_and_closed_sockets() -> None:
    a, b = socket.socketpair()
    try:
        assert is_readable(a) is False  # open and quiet: reusable
        b.send(b"x")
        assert is_readable(a) is True
        b.close()
        a.recv(1)
        assert is_readable(a) is True  # end of file: the peer closed it
    finally:
        a.close()
    assert is_readable(a) is True  # closed here: fileno() is -1
    assert is_readable(None) is True


def test_provider_builds_the_sdk_platform_headers_once_up_front(upstream: AiohttpOpenAI) -> None:
    """The SDK's first call would run `uname -p` in a subprocess (a gevent yield): concurrent first
    calls of a cold worker each started one. The provider builds them while it is being created."""
    from openai import _base_client

    from lib.providers.openai import OpenAIProvider
    from tests.conftest import make_settings

    _base_client.platform_headers.cache_clear()
    OpenAIProvider(make_settings(openai_api_key="sk-cold", openai_base_url=upstream.base_url))
    assert _base_client.platform_headers.cache_info().currsize == 1
