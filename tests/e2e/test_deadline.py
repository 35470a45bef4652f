"""The request deadline end to end: the service under gunicorn (gevent worker), upstreams that trickle.

The upstream is ``tests.support.trickle``: raw HTTP/1.1 over asyncio sockets, written independently
of the project's mocks, standing in for OpenAI (``OPENAI_BASE_URL``) and bedrock-runtime
(``AWS_ENDPOINT_URL_BEDROCK_RUNTIME``). It sends valid answers one byte every 0.3 s, so no single read
ever waits long; only a deadline over the whole exchange ends such a call. Every route must answer
within ``REQUEST_DEADLINE_SECONDS`` + 1.5 s with the documented status (504 ``timeout``), or, for a
stream that has already started, end the stream with an in-band error event.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Service
from tests.support.trickle import TrickleUpstream

pytestmark = pytest.mark.e2e
KEY = "deadline-e2e-key"
DEADLINE = 2.5
SLACK = 1.5
SONNET = "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"
MODELS = {
    "openai": ("gpt-4o", "text-embedding-3-small"),
    "bedrock": (SONNET, "bedrock.amazon.titan-embed-text-v2:0"),
}
DATA = Path(__file__).resolve().parents[1] / "data" / "codeorg-aiproxy"


@dataclass
class Answer:
    status: int
    seconds: float
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def kind(self) -> str:
        err = self.json()["error"]
        return str(err["type"] if isinstance(err, dict) else self.json()["kind"])

    def events(self) -> list[Any]:
        out = []
        for block in self.body.decode().split("\n\n"):
            if block.startswith("data: "):
                data = block[len("data: ") :]
                out.append(data if data == "[DONE]" else json.loads(data))
        return out


@pytest.fixture(scope="module")
def rig() -> Iterator[tuple[TrickleUpstream, Service]]:
    with TrickleUpstream("trickle", interval=0.3) as up:
        env = {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": "sk-deadline-e2e",
            "OPENAI_BASE_URL": up.openai_base_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": up.bedrock_endpoint_url,
            "AWS_ACCESS_KEY_ID": "deadline-e2e",
            "AWS_SECRET_ACCESS_KEY": "deadline-e2e-secret",
            "AWS_REGION": "us-east-1",
            "REQUEST_DEADLINE_SECONDS": str(DEADLINE),
            "MAX_RETRIES": "3",
            "RETRY_BASE_DELAY_SECONDS": "0.05",
            "RETRY_MAX_DELAY_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        }
        with Service(env, workers=1) as svc:  # one gevent worker: every request shares one hub
            # Warm up: the worker builds each provider (imports, clients) on its first call, which
            # would otherwise hold up the gevent hub during the timed cases.
            # On a loaded machine that first call can itself outlast the short deadline (a 504): try
            # again until the worker has everything loaded; the cases below are what is tested.
            up.mode = "fast"
            for provider in MODELS:
                for route, stream in (
                    ("/chat", False),
                    ("/embeddings", False),
                    ("/v1/chat/completions", True),
                ):
                    statuses = []
                    for _ in range(5):
                        statuses.append(_request(svc, route, _model(provider, route), stream=stream).status)
                        if statuses[-1] == 200:
                            break
                    assert statuses[-1] == 200, (provider, route, statuses)
            yield up, svc


def _request(svc: Service, route: str, model: str, *, stream: bool = False) -> Answer:
    if route == "/assessment":
        form = {
            "code": (DATA / "u3l13_01.js").read_text(encoding="utf-8"),
            "prompt": (DATA / "u3l13.txt").read_text(encoding="utf-8"),
            "rubric": (DATA / "u3l13.csv").read_text(encoding="utf-8"),
            "num-responses": "1",
            "response-type": "tsv",
            "model": model,
        }
        body, ctype = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    elif route.endswith("/embeddings"):
        body, ctype = json.dumps({"model": model, "input": "hello"}).encode(), "application/json"
    else:
        payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
        if stream:
            payload["stream"] = True
        body, ctype = json.dumps(payload).encode(), "application/json"
    started = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=DEADLINE + 30)
    try:
        conn.request("POST", route, body=body, headers={"Authorization": KEY, "Content-Type": ctype})
        resp = conn.getresponse()
        raw = resp.read()
        return Answer(
            resp.status, time.monotonic() - started, {k.lower(): v for k, v in resp.getheaders()}, raw
        )
    finally:
        conn.close()


CASES = [
    (provider, route, stream)
    for provider in ("openai", "bedrock")
    for route, stream in (
        ("/chat", False),
        ("/v1/chat/completions", False),
        ("/v1/chat/completions", True),
        ("/embeddings", False),
        ("/v1/embeddings", False),
        ("/assessment", False),
    )
]


def _model(provider: str, route: str) -> str:
    chat, embed = MODELS[provider]
    return embed if route.endswith("/embeddings") else chat


def test_trickling_upstreams_end_at_the_deadline_on_every_route_all_at_once(
    rig: tuple[TrickleUpstream, Service],
) -> None:
    """All twelve cases at the same time in one gevent worker: each ends within the deadline."""
    up, svc = rig
    up.mode = "trickle"
    answers: dict[tuple[str, str, bool], Answer | BaseException] = {}

    def run(case: tuple[str, str, bool]) -> None:
        provider, route, stream = case
        try:
            answers[case] = _request(svc, route, _model(provider, route), stream=stream)
        except BaseException as exc:
            answers[case] = exc

    threads = [threading.Thread(target=run, args=(c,)) for c in CASES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 40)
    for case in CASES:
        a = answers[case]
        assert isinstance(a, Answer), (case, a)
        assert a.seconds < DEADLINE + SLACK, (case, a.seconds)
        if case[2]:  # the stream had started (first text sent at once): in-band error, then the end
            assert a.status == 200 and a.headers["content-type"].startswith("text/event-stream"), case
            events = a.events()
            assert events[0]["choices"][0]["delta"]["role"] == "assistant"
            texts = [
                e["choices"][0]["delta"].get("content") for e in events if e != "[DONE]" and e.get("choices")
            ]
            assert "slow" in texts, (case, events)
            assert events[-1]["error"]["type"] == events[-1]["error"]["code"] == "timeout", events
        else:
            assert a.status == 504 and a.kind() == "timeout", (case, a.status, a.body[:300])
    logs = svc.logs()
    assert logs.count('"error_kind": "timeout"') >= len(CASES), logs[-3000:]


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_a_stream_that_trickles_before_its_first_token_is_a_504(
    rig: tuple[TrickleUpstream, Service], provider: str
) -> None:
    up, svc = rig
    up.mode = "trickle_head"  # even the status line trickles
    a = _request(svc, "/v1/chat/completions", _model(provider, "/chat"), stream=True)
    assert a.seconds < DEADLINE + SLACK
    assert a.status == 504 and a.kind() == "timeout", a.body[:300]


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("route", ["/chat", "/v1/chat/completions", "/embeddings", "/assessment"])
def test_retry_after_past_the_deadline_is_a_429_at_once(
    rig: tuple[TrickleUpstream, Service], provider: str, route: str
) -> None:
    """Retry-After 30 s with 2.5 s left: the documented 429 with its Retry-After, without sleeping."""
    up, svc = rig
    up.mode, up.retry_after = "ratelimit", 30
    a = _request(svc, route, _model(provider, route))
    assert a.status == 429 and a.kind() == "rate_limited", a.body[:300]
    assert a.headers.get("retry-after") == "30"
    assert a.seconds < 1.0


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("route", ["/embeddings", "/assessment"])
def test_backoff_for_429_never_sleeps_past_the_deadline(
    rig: tuple[TrickleUpstream, Service], provider: str, route: str
) -> None:
    """Retry-After 1 s, 2.5 s deadline: two retries fit, a third would end past the deadline."""
    up, svc = rig
    up.mode, up.retry_after = "ratelimit", 1
    a = _request(svc, route, _model(provider, route))
    assert a.status == 429 and a.kind() == "rate_limited", a.body[:300]
    assert 1.9 < a.seconds < DEADLINE + 0.3


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("mode", ["garbage", "garbage_text"])
def test_garbage_after_the_first_chunk_is_an_in_band_error(
    rig: tuple[TrickleUpstream, Service], provider: str, mode: str
) -> None:
    up, svc = rig
    up.mode = mode
    a = _request(svc, "/v1/chat/completions", _model(provider, "/chat"), stream=True)
    assert a.status == 200
    events = a.events()
    assert events[-1]["error"]["type"] == "invalid_upstream_response", events
    assert events[-1]["error"]["code"] == "invalid_upstream_response"
    assert "[DONE]" not in events
    line = [ln for ln in svc.logs().splitlines() if '"route": "/v1/chat/completions"' in ln][-1]
    assert '"error_kind": "invalid_upstream_response"' in line, line


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
def test_each_request_keeps_its_own_deadline_in_one_worker(
    rig: tuple[TrickleUpstream, Service], provider: str
) -> None:
    """Two trickled requests 1.2 s apart on one gevent worker end 1.2 s apart: each greenlet's upstream
    calls are held to its own request's deadline, not to the other's."""
    up, svc = rig
    up.mode = "trickle"
    ended: dict[str, float] = {}
    t0 = time.monotonic()

    def run(name: str) -> None:
        a = _request(svc, "/chat", _model(provider, "/chat"))
        assert a.status == 504
        ended[name] = time.monotonic() - t0

    first = threading.Thread(target=run, args=("first",))
    first.start()
    time.sleep(1.2)
    second = threading.Thread(target=run, args=("second",))
    second.start()
    first.join(DEADLINE + 30)
    second.join(DEADLINE + 30)
    assert DEADLINE - 0.1 < ended["first"] < DEADLINE + SLACK, ended
    assert 1.2 + DEADLINE - 0.1 < ended["second"] < 1.2 + DEADLINE + SLACK, ended
