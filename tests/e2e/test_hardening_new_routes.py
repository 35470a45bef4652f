"""Issue 12's faults replayed from outside on the routes added after it: the Responses API, images,
SageMaker, retrieval collections (and grounded chat), teacher feedback and the admin key routes.

The service runs under gunicorn as ``bin/serve`` runs it; the upstream is ``tests.support.trickle``
(raw HTTP/1.1 over asyncio sockets, written independently of the project's mocks) standing in for
OpenAI, bedrock-runtime and sagemaker-runtime at once.  Each case is what a hostile or careless client
can do with bytes on a socket: a trickling or rate-limiting upstream must end by the request deadline,
a chunked body past ``MAX_BODY_BYTES`` or with broken framing must be refused before the route acts
(also on routes that take no body: revoke, rotate, delete, the fixture smoke routes), and a lone
surrogate in any text field must be a 400 naming that field, with nothing sent upstream.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.server import REPO, Service, free_port
from tests.support.trickle import TrickleUpstream

pytestmark = pytest.mark.e2e
KEY = "new-routes-hardening-key"
DEADLINE = 3.0
SLACK = 1.5
LIMIT = 64 * 1024  # MAX_BODY_BYTES here
SURROGATE = "\ud800"
CLAUDE = "bedrock.anthropic.claude-3-haiku-20240307-v1:0"
CHAT = {"openai": "gpt-4o-mini", "bedrock": CLAUDE}
EMBED = {"openai": "text-embedding-3-small", "bedrock": "bedrock.amazon.titan-embed-text-v2:0"}
IMAGE = {"openai": "dall-e-3", "bedrock": "bedrock.amazon.titan-image-generator-v2:0"}
SAGEMAKER = "sagemaker.hardening-llm"


class Rig:
    def __init__(self, up: TrickleUpstream, svc: Service) -> None:
        self.up, self.svc = up, svc

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        ctype: str = "application/json",
    ) -> tuple[int, float, str, bytes]:
        """(status, seconds, content type, body) of one request with the root key."""
        conn = http.client.HTTPConnection("127.0.0.1", self.svc.port, timeout=DEADLINE + 40)
        started = time.monotonic()
        try:
            data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
            conn.request(method, path, body=data, headers={"Authorization": KEY, "Content-Type": ctype})
            resp = conn.getresponse()
            out = resp.read()
            return resp.status, time.monotonic() - started, resp.getheader("Content-Type", ""), out
        finally:
            conn.close()

    def upstream_calls(self) -> int:
        return sum(self.up.hits.values())


def _error(body: bytes) -> tuple[str, str | None]:
    """(kind, field) of either error shape: native ``{error, kind, field}`` or /v1's error object."""
    doc = json.loads(body)
    err = doc["error"]
    if isinstance(err, dict):
        return str(err["code"]), err.get("param")
    return str(doc["kind"]), doc.get("field")


@pytest.fixture(scope="module")
def rig() -> Iterator[Rig]:
    with TrickleUpstream("fast", interval=0.3) as up:
        env = {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": "sk-new-routes",
            "OPENAI_BASE_URL": up.openai_base_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": up.bedrock_endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": up.bedrock_endpoint_url,
            "AWS_ACCESS_KEY_ID": "new-routes",
            "AWS_SECRET_ACCESS_KEY": "new-routes-secret",
            "AWS_REGION": "us-east-1",
            "KEY_HASH_SECRET": "new-routes-hash-secret-0123456789abcdef",
            "MAX_BODY_BYTES": str(LIMIT),
            "REQUEST_DEADLINE_SECONDS": str(DEADLINE),
            "MAX_RETRIES": "3",
            "RETRY_BASE_DELAY_SECONDS": "0.05",
            "RETRY_MAX_DELAY_SECONDS": "0.2",
        }
        with Service(env, workers=1) as svc:
            r = Rig(up, svc)
            # Warm the worker up (providers are imported and built on first use; on a loaded machine
            # that can outlast the short deadline) and create what the cases below query.
            for provider in ("openai", "bedrock"):
                _until_ok(r, "/v1/responses", {"model": CHAT[provider], "input": "hi"})
                _until_ok(r, "/collections", {"name": f"c-{provider}", "model": EMBED[provider]})
                _until_ok(r, f"/collections/c-{provider}/documents", {"id": "d", "text": "hello world"})
            _until_ok(
                r,
                "/v1/chat/completions",
                {"model": SAGEMAKER, "messages": [{"role": "user", "content": "hi"}]},
            )
            yield r


def _until_ok(r: Rig, path: str, body: dict[str, Any]) -> None:
    statuses = []
    for _ in range(5):
        statuses.append(r.call("POST", path, body)[0])
        if statuses[-1] in (200, 201):
            return
    raise AssertionError((path, statuses))


# --- the deadline --------------------------------------------------------------------------------
def _upstream_cases() -> list[tuple[str, str, dict[str, Any]]]:
    """(name, path, body) of every new route that calls an upstream, per provider."""
    cases: list[tuple[str, str, dict[str, Any]]] = []
    for p in ("openai", "bedrock"):
        cases += [
            (f"responses-{p}", "/v1/responses", {"model": CHAT[p], "input": "hi"}),
            (f"responses-stream-{p}", "/v1/responses", {"model": CHAT[p], "input": "hi", "stream": True}),
            (f"images-{p}", "/images", {"model": IMAGE[p], "prompt": "a cat"}),
            (f"v1-images-{p}", "/v1/images/generations", {"model": IMAGE[p], "prompt": "a cat"}),
            (f"document-{p}", f"/collections/c-{p}/documents", {"id": "d2", "text": "another text"}),
            (f"query-{p}", f"/collections/c-{p}/query", {"query": "hello"}),
            (
                f"grounded-{p}",
                "/v1/chat/completions",
                {
                    "model": CHAT[p],
                    "messages": [{"role": "user", "content": "hi"}],
                    "retrieval": {"collection": f"c-{p}"},
                },
            ),
        ]
    cases.append(
        ("sagemaker", "/chat", {"model": SAGEMAKER, "messages": [{"role": "user", "content": "hi"}]})
    )
    return cases


UPSTREAM_CASES = _upstream_cases()


def _sse_events(body: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for block in body.decode().split("\n\n")
        for line in block.split("\n")
        if line.startswith("data: ")
    ]


def test_trickling_upstreams_end_at_the_deadline_on_every_new_route_all_at_once(rig: Rig) -> None:
    rig.up.mode = "trickle"
    answers: dict[str, Any] = {}

    def run(name: str, path: str, body: dict[str, Any]) -> None:
        try:
            answers[name] = rig.call("POST", path, body)
        except BaseException as exc:  # reported below with the case's name
            answers[name] = exc

    threads = [threading.Thread(target=run, args=case) for case in UPSTREAM_CASES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 40)
    for name, _, body in UPSTREAM_CASES:
        answer = answers[name]
        assert isinstance(answer, tuple), (name, answer)
        status, seconds, ctype, out = answer
        assert seconds < DEADLINE + SLACK, (name, seconds)
        if body.get("stream"):  # the stream had begun (first text sent at once): in-band error, then the end
            assert status == 200 and ctype.startswith("text/event-stream"), (name, status, out[:300])
            events = _sse_events(out)
            assert any(e.get("delta") == "slow" for e in events), (name, events)
            assert events[-1]["type"] == "error" and events[-1]["code"] == "timeout", (name, events[-1])
        else:
            assert status == 504 and _error(out)[0] == "timeout", (name, status, out[:300])


@pytest.mark.parametrize(
    ("name", "path", "body"), UPSTREAM_CASES[:-1], ids=[c[0] for c in UPSTREAM_CASES[:-1]]
)
def test_backoff_for_429_never_sleeps_past_the_deadline(
    rig: Rig, name: str, path: str, body: dict[str, Any]
) -> None:
    """Retry-After 1.2 s, 3 s deadline, three retries allowed: two retries fit, a third would not."""
    rig.up.mode, rig.up.retry_after = "ratelimit", 1.2
    status, seconds, _, out = rig.call("POST", path, body)
    assert status == 429 and _error(out)[0] == "rate_limited", (name, status, out[:300])
    assert seconds < DEADLINE, (name, seconds)


@pytest.mark.parametrize("provider", ["openai", "bedrock"])
@pytest.mark.parametrize("mode", ["garbage", "garbage_text"])
def test_responses_stream_with_garbage_after_the_first_chunk_ends_with_an_error_event(
    rig: Rig, provider: str, mode: str
) -> None:
    rig.up.mode = mode
    status, _, _, out = rig.call(
        "POST", "/v1/responses", {"model": CHAT[provider], "input": "hi", "stream": True}
    )
    assert status == 200
    events = _sse_events(out)
    assert events[-1]["type"] == "error" and events[-1]["code"] == "invalid_upstream_response", events[-1]
    assert not any(e["type"] == "response.completed" for e in events)


# --- bodies: the limit and the framing on every POST route ----------------------------------------
def _chunked(body: bytes, piece: int = 16 * 1024) -> bytes:
    out = b"".join(
        b"%x\r\n" % len(body[i : i + piece]) + body[i : i + piece] + b"\r\n"
        for i in range(0, len(body), piece)
    )
    return out + b"0\r\n\r\n"


def _raw_exchange(port: int, method: str, path: str, framed: bytes) -> tuple[int, str, bytes]:
    """Send a chunked request over a socket and read the whole answer (the server closes)."""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    ).encode()
    raw = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + framed)
        with contextlib.suppress(ConnectionResetError):  # a reset loses the answer: asserted below
            while chunk := sock.recv(65536):
                raw += chunk
    head_bytes, _, body = raw.partition(b"\r\n\r\n")
    assert head_bytes, "the connection was reset before any answer"
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers.get("content-type", ""), body


def _new_key(rig: Rig) -> str:
    status, _, _, out = rig.call("POST", "/admin/keys", {"name": "victim", "scopes": ["chat"]})
    assert status == 201, out
    return str(json.loads(out)["id"])


BIG = "x" * (LIMIT + 10)


def _post_routes(key_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, an over-limit body) for every route of the new features that accepts a body."""
    return [
        ("POST", "/admin/keys", {"name": BIG, "scopes": ["chat"]}),
        ("POST", f"/admin/keys/{key_id}/revoke", {"pad": BIG}),
        ("POST", f"/admin/keys/{key_id}/rotate", {"pad": BIG}),
        ("POST", "/collections", {"name": BIG}),
        ("POST", "/collections/c-openai/documents", {"id": "big", "text": BIG}),
        ("POST", "/collections/c-openai/query", {"query": BIG}),
        ("DELETE", "/collections/c-openai/documents/d", {"pad": BIG}),
        ("DELETE", "/collections/c-openai", {"pad": BIG}),
        (
            "POST",
            "/assessment/feedback",
            {"assessment_id": "a", "teacher": "t", "key_concepts": [], "comment": BIG},
        ),
        ("POST", "/v1/images/generations", {"model": "dall-e-3", "prompt": BIG}),
        ("POST", "/images", {"model": "dall-e-3", "prompt": BIG}),
        ("POST", "/v1/responses", {"model": "gpt-4o", "input": BIG}),
        ("POST", "/v1/embeddings", {"model": "text-embedding-3-small", "input": BIG}),
        ("POST", "/test/assessment", {"pad": BIG}),
        ("POST", "/test/assessment/cfe", {"pad": BIG}),
    ]


def _assert_nothing_changed(rig: Rig, key_id: str, calls_before: int) -> None:
    status, _, _, out = rig.call("GET", f"/admin/keys/{key_id}")
    assert status == 200 and json.loads(out)["status"] == "active", out
    status, _, _, out = rig.call("POST", "/collections/c-openai/query", {"query": "hello"})
    assert status == 200 and json.loads(out)["data"][0]["document_id"] == "d", out
    # that query embedded once; nothing else reached the upstream
    assert rig.upstream_calls() == calls_before + 1


def test_chunked_body_over_the_limit_is_413_on_every_route_before_it_acts(rig: Rig) -> None:
    rig.up.mode = "fast"
    key_id = _new_key(rig)
    before = rig.upstream_calls()
    for method, path, body in _post_routes(key_id):
        status, ctype, out = _raw_exchange(rig.svc.port, method, path, _chunked(json.dumps(body).encode()))
        assert ctype.startswith("application/json"), (path, out[:200])
        assert status == 413 and _error(out)[0] == "request_too_large", (path, status, out[:300])
    _assert_nothing_changed(rig, key_id, before)


@pytest.mark.parametrize(
    "framed",
    [b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcXY0\r\n\r\n", b"3;=bad\r\nabc\r\n0\r\n\r\n"],
    ids=["bad-size", "missing-crlf", "bad-extension"],
)
def test_malformed_chunked_framing_is_400_on_every_route_before_it_acts(rig: Rig, framed: bytes) -> None:
    rig.up.mode = "fast"
    key_id = _new_key(rig)
    before = rig.upstream_calls()
    for method, path, _ in _post_routes(key_id):
        status, ctype, out = _raw_exchange(rig.svc.port, method, path, framed)
        assert ctype.startswith("application/json"), (path, out[:200])
        assert status == 400 and _error(out)[0] in ("malformed_body", "invalid_request"), (path, status, out)
    _assert_nothing_changed(rig, key_id, before)


def test_routes_without_a_body_refuse_one_but_accept_nothing_or_an_empty_object(rig: Rig) -> None:
    key_id = _new_key(rig)
    status, _, _, out = rig.call("POST", f"/admin/keys/{key_id}/rotate", {"name": "renamed"})
    assert status == 400 and _error(out) == ("invalid_request", "body"), out
    assert rig.call("POST", f"/admin/keys/{key_id}/rotate", {})[0] == 200
    assert rig.call("POST", f"/admin/keys/{key_id}/revoke")[0] == 200


# --- lone surrogates in every text field of the new routes ---------------------------------------
S = SURROGATE
SURROGATE_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("/v1/responses", {"model": "gpt-4o", "input": "a" + S}, "input"),
    ("/v1/responses", {"model": "gpt-4o", "input": "a", "instructions": S}, "instructions"),
    (
        "/v1/responses",
        {"model": "gpt-4o", "input": [{"role": "user", "content": [{"type": "input_text", "text": S}]}]},
        "input.0.content.0.text",
    ),
    (
        "/v1/responses",
        {
            "model": "gpt-4o",
            "input": [
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c", "output": S},
            ],
        },
        "input.1.output",
    ),
    ("/v1/responses", {"model": "gpt-4o", "input": "a", "metadata": {"k": S}}, "metadata.k"),
    ("/collections", {"name": "n" + S}, "name"),
    ("/collections/c-openai/documents", {"id": "d" + S, "text": "x"}, "id"),
    ("/collections/c-openai/documents", {"id": "d", "text": "x" + S}, "text"),
    ("/collections/c-openai/documents", {"id": "d", "text": "x", "metadata": {"m": S}}, "metadata.m"),
    ("/collections/c-openai/query", {"query": S}, "query"),
    (
        "/assessment/feedback",
        {
            "assessment_id": "a",
            "teacher": "t",
            "key_concepts": [{"key_concept": "k", "thumbs": "up"}],
            "comment": S,
        },
        "comment",
    ),
    (
        "/assessment/feedback",
        {"assessment_id": "a", "teacher": S, "key_concepts": [{"key_concept": "k", "thumbs": "up"}]},
        "teacher",
    ),
    ("/admin/keys", {"name": "n" + S, "scopes": ["chat"]}, "name"),
    ("/admin/keys", {"name": "n", "owner": S, "scopes": ["chat"]}, "owner"),
    ("/v1/images/generations", {"model": "dall-e-3", "prompt": S}, "prompt"),
    ("/images", {"model": "dall-e-3", "prompt": S}, "prompt"),
    (
        "/chat",
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "retrieval": {"collection": S}},
        "retrieval.collection",
    ),
]


def test_lone_surrogates_in_every_text_field_are_400_naming_it(rig: Rig) -> None:
    rig.up.mode = "fast"
    before = rig.upstream_calls()
    for path, body, field in SURROGATE_CASES:
        status, _, _, out = rig.call("POST", path, body)  # json.dumps sends the six characters \ud800
        assert status == 400, (path, field, out[:300])
        assert _error(out) == ("invalid_request", field), (path, out[:300])
        assert "surrogate" in json.loads(out).__repr__()
    # a form whose key_concepts is JSON text holding one
    form = urllib.parse.urlencode(
        {
            "assessment_id": "a",
            "teacher": "t",
            "key_concepts": json.dumps([{"key_concept": S, "thumbs": "up"}]),
        }
    ).encode()
    status, _, _, out = rig.call(
        "POST", "/assessment/feedback", raw=form, ctype="application/x-www-form-urlencoded"
    )
    assert status == 400 and _error(out) == ("invalid_request", "key_concepts.0.key_concept"), out
    assert rig.upstream_calls() == before


# --- the keyless development mode, with the start-up bind check bypassed --------------------------
def _this_machines_address() -> str | None:
    """A non-loopback address of this machine (the route a UDP socket would take; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


def test_keyless_service_on_all_interfaces_still_serves_only_loopback(tmp_path: Any) -> None:
    """``bin/serve -c /dev/null --bind 0.0.0.0:PORT`` replaces the config that checks the binds at
    start-up: the service starts open on every interface, but a client from another address gets 401."""
    external = _this_machines_address()
    if external is None:
        pytest.skip("this machine has no non-loopback IPv4 address to connect from")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIPROXY_", "OPENAI_", "GUNICORN_"))}
    env.update(
        AIPROXY_CONFIG_FILE="/nonexistent",
        AIPROXY_VENV=sys.prefix,
        DATA_DIR=str(tmp_path),
        WEB_CONCURRENCY="1",
    )
    proc = subprocess.Popen(
        [str(REPO / "bin" / "serve"), "-c", "/dev/null", "--bind", f"0.0.0.0:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the service did not start"
            with contextlib.suppress(OSError):
                if _get(("127.0.0.1", port), "/v1/models")[0] == 200:
                    break
            time.sleep(0.2)
        status, body = _get((external, port), "/v1/models")
        assert status == 401 and _error(body)[0] == "unauthorized", body
        assert _get((external, port), "/")[0] == 200  # the health check stays open
    finally:
        proc.terminate()
        proc.wait(30)


def _get(address: tuple[str, int], path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# --- a body that never arrives ------------------------------------------------------------------
@pytest.mark.parametrize("trickle", [False, True], ids=["silent", "trickled"])
@pytest.mark.parametrize("path", ["/chat", "/v1/responses", "/collections/c-openai/documents"])
def test_a_body_that_does_not_arrive_by_the_deadline_is_408(rig: Rig, path: str, trickle: bool) -> None:
    """Headers promise 1,000 bytes; the client sends one (then a space every 0.5 s, or nothing). The
    headers were complete, so only a bound on the body read ends this: the request's deadline."""
    rig.up.mode = "fast"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n{"
    ).encode()
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", rig.svc.port), timeout=DEADLINE + 20) as sock:
        sock.sendall(head)
        raw = b""
        sock.settimeout(0.5)
        while b"\r\n\r\n" not in raw and time.monotonic() - started < DEADLINE + 20:
            try:
                raw += sock.recv(65536)
            except TimeoutError:
                if trickle:
                    with contextlib.suppress(OSError):
                        sock.sendall(b" ")
        seconds = time.monotonic() - started
        head_bytes, _, body = raw.partition(b"\r\n\r\n")
        with contextlib.suppress(TimeoutError):
            while len(body) < 20 or not body.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                body += chunk
    assert head_bytes.startswith(b"HTTP/1.1 408"), raw[:300]
    assert seconds < DEADLINE + SLACK, seconds
    assert _error(body)[0] == "request_timeout", body
