"""Slow request bodies near the connection cap, under gunicorn (src/server.py's worker).

A client with a valid key sends its headers and then its body slowly (or not at all): the body read
waits on the client, so near the cap such a connection is evicted like an idle or slow-header one
(408 JSON ``request_timeout``, then closed), and health checks keep answering long before the body
deadline (60 s here) would end them.  Requests that wait on their upstream or stream their answer
(the upstream here trickles its answers: a 4-9 s call) are never evicted.

The upstream is ``tests.support.trickle`` (written independently of the project's mocks); it counts
every request it receives, so "nothing went upstream" is checked on the wire.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.server import Service, post_trickled_chat
from tests.support.trickle import TrickleUpstream, wait_for

pytestmark = pytest.mark.e2e
KEY = "slow-bodies-key"
SLOTS = 20  # GUNICORN_WORKER_CONNECTIONS: shedding starts 2 below
DEADLINE = 60  # REQUEST_DEADLINE_SECONDS: far beyond every wait below, so only shedding ends a body
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[TrickleUpstream]:
    with TrickleUpstream("trickle", interval=0.02) as up:
        yield up


@pytest.fixture(scope="module")
def svc(upstream: TrickleUpstream) -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "OPENAI_API_KEY": "sk-slow-bodies",
        "OPENAI_BASE_URL": upstream.openai_base_url,
        "REQUEST_DEADLINE_SECONDS": str(DEADLINE),
        "GUNICORN_WORKER_CONNECTIONS": str(SLOTS),
        "GUNICORN_HEADER_TIMEOUT": "5",
        "GUNICORN_KEEPALIVE": "5",
    }
    with Service(env, workers=1) as service:
        yield service


def _slow_body(port: int, path: str = "/chat") -> socket.socket:
    """Headers promising 1,000 bytes of body, then one byte of it: the app blocks reading the rest."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{".encode()
    )
    return s


def _health(port: int) -> tuple[int, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return int(raw.split()[1]), time.monotonic() - started


def _answers(socks: list[socket.socket], wait: float) -> tuple[list[bytes], int]:
    """(answers, still open): what the server sent on every socket it has closed within ``wait`` s."""
    answers: list[bytes] = []
    pending = {s.fileno(): (s, b"") for s in socks}
    end = time.monotonic() + wait
    while pending and time.monotonic() < end:
        ready, _, _ = select.select(list(pending), [], [], 0.1)
        for fd in ready:
            s, got = pending[fd]
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if chunk:
                pending[fd] = (s, got + chunk)
            else:
                answers.append(got)
                del pending[fd]
    return answers, len(pending)


def _kind(raw: bytes) -> tuple[int, str, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    doc = json.loads(body)
    return int(head.split()[1]), doc["kind"], doc["error"]


def _crowd(port: int, n: int) -> tuple[list[socket.socket], list[tuple[int, float]]]:
    """Open ``n`` slow-body connections (3x the slots), then time three health checks."""
    socks = [_slow_body(port) for _ in range(n)]
    time.sleep(0.5)  # the last ones are accepted and reading their body
    return socks, [_health(port) for _ in range(3)]


def test_health_answers_while_more_slow_bodies_than_slots_are_open(
    svc: Service, upstream: TrickleUpstream
) -> None:
    before = sum(upstream.hits.values())
    socks: list[socket.socket] = []
    try:
        socks, checks = _crowd(svc.port, 3 * SLOTS)
        for status, took in checks:
            assert status == 200
            assert took < 5.0, took  # not the 60 s body deadline
        answers, still_open = _answers(socks, wait=3.0)
    finally:
        for s in socks:
            s.close()
    # Every connection beyond the slots was evicted; the ones left are those still in their slots.
    assert len(answers) >= 3 * SLOTS - SLOTS, (len(answers), still_open)
    assert still_open <= SLOTS
    answered = [a for a in answers if a]
    assert len(answered) >= len(answers) - 3, "evicted body reads are answered, not just closed"
    for raw in answered:
        status, kind, message = _kind(raw)
        assert (status, kind) == (408, "request_timeout"), raw[:300]
        assert "too slow" in message and "body" in message
        assert b"connection: close" in raw.lower()
    assert sum(upstream.hits.values()) == before  # no half-read body went upstream
    assert "connection slots nearly full" in svc.logs()


def test_a_shed_body_on_v1_is_answered_in_openai_shape(svc: Service) -> None:
    victim = _slow_body(svc.port, "/v1/chat/completions")
    socks: list[socket.socket] = []
    try:
        time.sleep(0.3)  # the victim's body wait is now the oldest
        socks = [_slow_body(svc.port) for _ in range(SLOTS)]
        answers, _ = _answers([victim], wait=5.0)
    finally:
        for s in [victim, *socks]:
            s.close()
    assert len(answers) == 1 and answers[0].startswith(b"HTTP/1.1 408"), answers
    error = json.loads(answers[0].partition(b"\r\n\r\n")[2])["error"]
    assert error["code"] == "request_timeout" and "too slow" in error["message"]


def _call(port: int, path: str, body: dict[str, Any], out: dict[str, Any]) -> None:
    started = time.monotonic()
    resp = requests.post(
        f"http://127.0.0.1:{port}{path}", json=body, headers={"Authorization": KEY}, timeout=DEADLINE
    )
    out["status"], out["text"], out["seconds"] = resp.status_code, resp.text, time.monotonic() - started


def test_requests_waiting_on_their_upstream_or_streaming_survive_the_shedding(
    svc: Service, upstream: TrickleUpstream
) -> None:
    plain: dict[str, Any] = {}
    stream: dict[str, Any] = {}
    before = upstream.hits["/v1/chat/completions"]
    threads = [
        threading.Thread(target=_call, args=(svc.port, "/chat", CHAT, plain)),
        threading.Thread(
            target=_call, args=(svc.port, "/v1/chat/completions", {**CHAT, "stream": True}, stream)
        ),
    ]
    for t in threads:
        t.start()
    socks: list[socket.socket] = []
    try:
        # Both are in flight (the upstream trickles: seconds per answer) before the crowd arrives.
        assert wait_for(lambda: upstream.hits["/v1/chat/completions"] >= before + 2, timeout=20)
        socks, checks = _crowd(svc.port, 3 * SLOTS)
        assert all(status == 200 for status, _ in checks), checks
        answers, _ = _answers(socks, wait=2.0)
        assert len(answers) >= 2 * SLOTS - 2  # the crowd was shed, the two calls kept their slots
    finally:
        for s in socks:
            s.close()
        for t in threads:
            t.join(DEADLINE)
    assert plain["status"] == 200 and "slow answer" in plain["text"], plain
    assert stream["status"] == 200 and '"slow"' in stream["text"] and '" answer"' in stream["text"], stream
    assert stream["text"].rstrip().endswith("data: [DONE]"), stream  # streamed to its end, no error event
    assert plain["seconds"] > 2.0 and stream["seconds"] > 2.0  # they really were in flight meanwhile


def test_a_lone_slow_body_is_not_evicted(svc: Service) -> None:
    # Far from the cap nothing is shed: a body arriving over 3 s (within the deadline) is read whole.
    with socket.create_connection(("127.0.0.1", svc.port), timeout=20) as s:
        post_trickled_chat(s, KEY, 3.0)
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    status, kind, _ = _kind(raw)
    assert status == 400 and kind != "request_timeout", raw[:300]


def test_an_evicted_slow_header_connection_is_answered_408(svc: Service) -> None:
    victim = socket.create_connection(("127.0.0.1", svc.port), timeout=10)
    victim.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # headers never finish (5 s header timeout)
    socks: list[socket.socket] = []
    try:
        time.sleep(0.3)
        socks = [_slow_body(svc.port) for _ in range(SLOTS)]
        answers, _ = _answers([victim], wait=3.0)  # well before the header timeout
    finally:
        for s in [victim, *socks]:
            s.close()
    assert len(answers) == 1, answers
    status, kind, message = _kind(answers[0])
    assert (status, kind) == (408, "request_timeout") and "headers too slow" in message


# --- the eviction itself, in process (real gevent sockets and greenlets, no gunicorn) ---------------


class _Req:
    def __init__(self, sock: Any) -> None:
        self.must_close = False
        self.body = self  # gunicorn's Body: reads wait on the socket
        self.sock = sock

    def read(self, size: int | None = None) -> bytes:
        return bytes(self.sock.recv(size or 65536))

    readline = read


def _worker(slots: int) -> Any:
    import gevent

    from src.server import AIProxyWorker

    worker = AIProxyWorker.__new__(AIProxyWorker)  # the parts _admit and _WatchedBody use
    worker.worker_connections, worker.reserve = slots, 0
    worker.conns, worker.sheddable, worker.shed_total, worker._last_shed_log = {}, OrderedDict(), 0, 0.0
    worker.hub = gevent.get_hub()
    worker.board = None  # no scoreboard: a single worker (src/accept_share.py)
    worker.log = type("Log", (), {"warning": staticmethod(lambda *a: None)})()
    return worker


def test_eviction_interrupts_a_blocked_body_read_and_spares_a_busy_request() -> None:
    import gevent
    from gevent import socket as gsocket

    from src.body_limit import ClientTooSlow
    from src.server import BODY, BUSY, IDLE, _Conn, _WatchedBody

    worker = _worker(slots=2)
    (a, a_peer), (b, b_peer) = gsocket.socketpair(), gsocket.socketpair()
    slow, busy = _Conn(a), _Conn(b)
    slow_req = _Req(a)
    outcome: dict[str, Any] = {}

    def read_body() -> None:
        body = _WatchedBody(slow_req, worker, slow)
        outcome["first"] = body.read(5)  # arrives: progress, the connection is busy again
        outcome["lines"] = list(body)  # blocks: nothing more comes
        outcome["never"] = True

    def guarded() -> None:
        try:
            read_body()
        except ClientTooSlow as exc:
            outcome["raised"] = str(exc)

    for conn in (slow, busy):
        worker._admit(conn)
    worker._enter(busy, BUSY)  # e.g. waiting on its upstream: never a candidate
    a_peer.sendall(b"hello")
    glet = gevent.spawn(guarded)
    gevent.sleep(0.05)
    assert outcome["first"] == b"hello" and slow.state == BODY
    assert list(worker.sheddable) == [id(slow)]
    newcomer = _Conn(gsocket.socketpair()[0])
    worker._admit(newcomer)  # over the cap: the body read waiting longest is evicted
    glet.join(2)
    assert "body too slow" in outcome["raised"] and "never" not in outcome
    assert slow_req.must_close and slow.state == BUSY and slow.evicted
    assert not busy.evicted and worker.shed_total == 1
    assert list(worker.sheddable) == [id(newcomer)]

    # A wait that ended before the hub delivered the eviction is left alone, and becomes a
    # candidate again; an idle one is simply closed.
    busy.evicted = True
    worker._interrupt(busy)
    assert not busy.evicted
    idle = _Conn(b)
    idle.state, idle.evicted = IDLE, True
    worker._interrupt(idle)
    assert b_peer.recv(1) == b""  # shut down
    # Reads off the worker's loop (here: the main greenlet) pass through untracked.
    off_loop = _Conn(gsocket.socketpair()[0])
    b2, b2_peer = gsocket.socketpair()
    b2_peer.sendall(b"x\n")
    assert _WatchedBody(_Req(b2), worker, off_loop).readline() == b"x\n"
    assert off_loop.state == IDLE and id(off_loop) not in worker.sheddable
