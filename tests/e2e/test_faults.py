"""Fault injection end to end (the cases of bench/faults.py as tests): the service under gunicorn, the
loopback OpenAI / bedrock-runtime stand-ins failing on purpose. Each fault ends in its documented status
and kind within the deadline, retryable ones are retried, and the next request on the route succeeds.
The service log then holds no key and no student code."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from bench.faults import FAULTS, KEY, OPENAI_KEY, REQUEST_KEY, ROUTES, SONNET, Fault, FaultRig, log_problems
from tests.support import openai_mock as om
from tests.support.server import Service

pytestmark = pytest.mark.e2e
DEADLINE = 3.0


@pytest.fixture(scope="module")
def rig() -> Iterator[FaultRig]:
    with FaultRig(deadline=DEADLINE, workers=2) as r:
        yield r


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_ends_in_documented_status_and_worker_stays_healthy(
    rig: FaultRig, fault: Fault, route: str
) -> None:
    outcome = rig.run(fault, route)
    assert outcome.ok, outcome


def test_logs_hold_no_key_and_no_student_code(rig: FaultRig) -> None:
    # Self-contained: the failures most likely to drag secrets into a log line, then the log.
    for fault in FAULTS:
        if fault.name in ("OpenAI 401 echoing the key", "OpenAI 500", "Bedrock AccessDeniedException"):
            assert rig.run(fault, "/assessment").ok
    assert rig.request("/chat", "gpt-4o", "a healthy call")[0] == 200
    assert rig.request("/v1/chat/completions", SONNET)[0] == 200
    logs = rig.logs()
    assert '"route": "/assessment"' in logs and '"status": 502' in logs and '"status": 503' in logs
    assert '"error_kind": "upstream_authentication"' in logs
    assert log_problems(logs) == []
    for secret in (KEY, OPENAI_KEY, REQUEST_KEY):  # log_problems checks these; the test says it outright
        assert secret not in logs


# --- graceful shutdown under load (extends tests/e2e/test_service.py's single-request case) --------


def _post(port: int, path: str, body: dict[str, object], timeout: float = 30.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(
            "POST",
            path,
            body=json.dumps(body),
            headers={"Authorization": KEY, "Content-Type": "application/json"},
        )
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _shutdown_env(mock: om.OpenAIMock, grace: int) -> dict[str, str]:
    return {
        "AIPROXY_API_KEY": KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": mock.base_url,
        "GUNICORN_GRACEFUL_TIMEOUT": str(grace),
    }


def test_sigterm_lets_every_in_flight_request_on_every_worker_finish() -> None:
    """Two workers, eight slow requests in flight (plain, streamed, embeddings): all complete after
    SIGTERM, new connections are refused, and the service exits 0 well inside the grace period."""
    with om.OpenAIMock(delay=2.5) as mock:
        svc = Service(_shutdown_env(mock, grace=15), workers=2).start()
        try:
            chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": "in flight"}]}
            calls = [
                ("/chat", chat),
                ("/v1/chat/completions", chat),
                ("/v1/chat/completions", {**chat, "stream": True}),
                ("/embeddings", {"model": "text-embedding-3-small", "input": "in flight"}),
            ] * 2
            results: list[tuple[int, bytes] | BaseException] = []

            def call(path: str, body: dict[str, object]) -> None:
                try:
                    results.append(_post(svc.port, path, body))
                except BaseException as exc:
                    results.append(exc)

            threads = [threading.Thread(target=call, args=c) for c in calls]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30  # a precondition, not a timing: a loaded machine is slow here
            while len(mock.requests) < len(calls) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(mock.requests) == len(calls), "every request reached the upstream before SIGTERM"
            assert svc.proc is not None
            stopped_at = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            time.sleep(1.5)  # workers close their listeners within their 1 s loop tick
            with pytest.raises(OSError):
                urllib.request.urlopen(svc.url + "/", timeout=2)
            for t in threads:
                t.join(20)
            assert svc.proc.wait(15) == 0
            assert time.monotonic() - stopped_at < 10, "exits once the in-flight work is done"
            assert len(results) == len(calls)
            for r in results:
                assert not isinstance(r, BaseException), r
                status, body = r
                assert status == 200, body[:200]
                assert b"flight" in body or b'"embedding"' in body  # streamed word by word
            streamed = [r[1] for r in results if isinstance(r, tuple) and r[1].startswith(b"data:")]
            assert len(streamed) == 2 and all(b.rstrip().endswith(b"data: [DONE]") for b in streamed)
        finally:
            svc.stop()


def test_sigterm_does_not_wait_past_the_grace_period_for_a_hung_upstream() -> None:
    """An upstream that never answers must not keep the service alive: it exits within
    GUNICORN_GRACEFUL_TIMEOUT (+ slack), long before the 150 s request deadline."""
    with om.OpenAIMock() as mock:
        mock.script(om.CHAT, om.Reply(hang=True))
        svc = Service(_shutdown_env(mock, grace=2), workers=1).start()
        try:
            errors: list[BaseException] = []

            def call() -> None:
                try:
                    _post(
                        svc.port, "/chat", {"messages": [{"role": "user", "content": "x"}], "model": "gpt-4o"}
                    )
                except BaseException as exc:
                    errors.append(exc)

            t = threading.Thread(target=call)
            t.start()
            deadline = time.monotonic() + 30  # a precondition, not a timing
            while not mock.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            assert mock.requests, "the request is in flight"
            assert svc.proc is not None
            stopped_at = time.monotonic()
            svc.proc.send_signal(signal.SIGTERM)
            svc.proc.wait(15)
            assert time.monotonic() - stopped_at < 2 + 4
            t.join(10)
            assert not t.is_alive() and errors, "the abandoned client sees the connection close, not a hang"
        finally:
            svc.stop()
