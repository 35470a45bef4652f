"""The HTTP server layer under gunicorn, attacked with raw bytes over sockets: body limits whatever
the framing, JSON for every server error, fail-closed binds, slow and idle connections."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import requests

from tests.support.openai_mock import OpenAIMock
from tests.support.server import REPO, Service, free_port, post_trickled_chat

pytestmark = pytest.mark.e2e
KEY = "hardening-key"
LIMIT = 64 * 1024  # MAX_BODY_BYTES in these tests


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def service(upstream: OpenAIMock) -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "OPENAI_API_KEY": "sk-hardening",
        "OPENAI_BASE_URL": upstream.base_url,
        "MAX_BODY_BYTES": str(LIMIT),
        "REQUEST_DEADLINE_SECONDS": "5",
    }
    with Service(env, workers=1) as svc:
        yield svc


def exchange(port: int, data: bytes, timeout: float = 15.0) -> bytes:
    """Send raw bytes, read until the server closes (or the answer is complete)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(data)
        out = b""
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                out += chunk
                if _complete(out):
                    break
        except ConnectionResetError:
            pass
        return out


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def parse(raw: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    assert headers.get("content-type", "").startswith("application/json"), raw[:300]
    return status, headers, json.loads(body)


def chunked(body: bytes, piece: int = 16 * 1024) -> bytes:
    out = b"".join(
        b"%x\r\n" % len(body[i : i + piece]) + body[i : i + piece] + b"\r\n"
        for i in range(0, len(body), piece)
    )
    return out + b"0\r\n\r\n"


def post_chunked(path: str, content_type: str, framed: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\nContent-Type: {content_type}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"
    ).encode() + framed


def _error_kind(body: dict[str, object]) -> str:
    err = body["error"]
    return str(err["code"]) if isinstance(err, dict) else str(body["kind"])


BIG_TEXT = "x" * (LIMIT + 10)
OVER_LIMIT = [
    ("/assessment", "application/x-www-form-urlencoded", f"code={BIG_TEXT}&prompt=p&rubric=r".encode()),
    (
        "/chat",
        "application/json",
        json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": BIG_TEXT}]}).encode(),
    ),
    (
        "/v1/chat/completions",
        "application/json",
        json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": BIG_TEXT}]}).encode(),
    ),
    (
        "/embeddings",
        "application/json",
        json.dumps({"model": "text-embedding-3-small", "input": BIG_TEXT}).encode(),
    ),
]


@pytest.mark.parametrize(("path", "ctype", "body"), OVER_LIMIT, ids=[p for p, _, _ in OVER_LIMIT])
def test_chunked_body_over_limit_is_413_and_nothing_goes_upstream(
    service: Service, upstream: OpenAIMock, path: str, ctype: str, body: bytes
) -> None:
    before = len(upstream.requests)
    status, _, answer = parse(exchange(service.port, post_chunked(path, ctype, chunked(body))))
    assert status == 413, answer
    assert _error_kind(answer) == "request_too_large"
    assert len(upstream.requests) == before


def test_chunked_body_exactly_at_limit_is_read_whole(service: Service, upstream: OpenAIMock) -> None:
    doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": ""}]}
    pad = LIMIT - len(json.dumps(doc).encode())
    doc["messages"][0]["content"] = "y" * pad  # type: ignore[index]
    body = json.dumps(doc).encode()
    assert len(body) == LIMIT
    raw = exchange(service.port, post_chunked("/chat", "application/json", chunked(body, piece=1000)))
    status, _, answer = parse(raw)
    assert status == 200, answer


@pytest.mark.parametrize(
    "framed",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # chunk size not hex
        b"3\r\nabcXY0\r\n\r\n",  # chunk data not followed by CRLF
        b"5\r\nabc",  # body ends inside a chunk
        b"3;=bad\r\nabc\r\n0\r\n\r\n",  # malformed chunk extension
    ],
    ids=["bad-size", "missing-crlf", "truncated", "bad-extension"],
)
@pytest.mark.parametrize("path", ["/chat", "/v1/chat/completions"])
def test_malformed_chunked_body_is_400_json(service: Service, path: str, framed: bytes) -> None:
    with socket.create_connection(("127.0.0.1", service.port), timeout=15) as sock:
        sock.sendall(post_chunked(path, "application/json", framed))
        if framed.endswith(b"abc"):
            sock.shutdown(socket.SHUT_WR)  # the truncated case: the client stops sending
        raw = b""
        while not _complete(raw):
            chunk = sock.recv(65536)
            if not chunk:
                break
            raw += chunk
    status, _, answer = parse(raw)
    assert status == 400, answer
    assert _error_kind(answer) in ("malformed_body", "invalid_request")


def test_requests_client_chunked_generator_body_hits_the_limit(
    service: Service, upstream: OpenAIMock
) -> None:
    before = len(upstream.requests)
    payload = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "z" * (3 * LIMIT)}]}
    ).encode()

    def gen() -> Iterator[bytes]:
        for i in range(0, len(payload), 8192):
            yield payload[i : i + 8192]

    resp = requests.post(
        service.url + "/chat",
        data=gen(),  # no length: requests sends Transfer-Encoding: chunked
        headers={"Authorization": KEY, "Content-Type": "application/json"},
        timeout=15,
    )
    assert resp.request.headers.get("Transfer-Encoding") == "chunked"
    assert resp.status_code == 413
    assert resp.json()["kind"] == "request_too_large"
    assert len(upstream.requests) == before


MALFORMED = [
    ("request-line-garbage", b"\x16\x03\x01 GARBAGE\r\n\r\n", 400, "malformed_http"),
    ("no-http-version", b"GET /\r\n\r\n", 400, "malformed_http"),
    ("header-without-colon", b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", 400, "malformed_http"),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: one\r\n two\r\n\r\n", 400, "malformed_http"),
    (
        "two-content-length",
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "malformed_http",
    ),
    (
        "content-length-and-chunked",
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "malformed_http",
    ),
    ("url-over-8kb", b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
    (
        "header-64kb",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n",
        431,
        "headers_too_large",
    ),
    (
        "1000-headers",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(1000)) + b"\r\n",
        431,
        "headers_too_large",
    ),
    (
        "unknown-transfer-coding",
        b"POST /chat HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: bogus\r\n\r\n0\r\n\r\n",
        501,
        "unsupported_transfer_coding",
    ),
]


@pytest.mark.parametrize(("raw", "status", "kind"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_http_is_answered_json(service: Service, raw: bytes, status: int, kind: str) -> None:
    got, headers, body = parse(exchange(service.port, raw))
    assert (got, body.get("kind")) == (status, kind), body
    assert isinstance(body.get("error"), str) and body["error"]
    assert headers.get("connection") == "close"
    assert b"<html" not in json.dumps(body).encode()


def test_server_error_log_does_not_quote_the_offending_header(service: Service) -> None:
    secret = "sk-never-log-this-value"
    exchange(service.port, f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {secret}\r\n\r\n".encode())
    assert "InvalidHeader" in service.logs()
    assert secret not in service.logs()


# --- fail closed whatever the bind came from -------------------------------------------------------


def _start(
    env_extra: dict[str, str], args: list[str], cmd: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AIPROXY_", "OPENAI_", "GUNICORN_CMD_ARGS"))
    }
    env.update(
        {"AIPROXY_CONFIG_FILE": "/nonexistent", "HOST": "127.0.0.1", "PORT": str(free_port()), **env_extra}
    )
    base = cmd or [sys.executable, "-m", "gunicorn", "-c", "src/gunicorn_conf.py"]
    return subprocess.run(
        [*base, *args, "src.wsgi:app"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )


OPEN_BINDS = [
    ("cli-ipv4", {}, ["--bind", f"0.0.0.0:{free_port()}"]),
    ("cli-ipv6", {}, ["--bind", f"[::]:{free_port()}"]),
    ("cli-second-bind", {}, ["--bind", f"127.0.0.1:{free_port()}", "--bind", f"0.0.0.0:{free_port()}"]),
    ("env-cmd-args", {"GUNICORN_CMD_ARGS": f"--bind 0.0.0.0:{free_port()}"}, []),
]


@pytest.mark.parametrize(("env", "args"), [b[1:] for b in OPEN_BINDS], ids=[b[0] for b in OPEN_BINDS])
def test_keyless_service_refuses_non_loopback_bind_from_anywhere(
    env: dict[str, str], args: list[str]
) -> None:
    proc = _start({"AIPROXY_ALLOW_UNAUTHENTICATED": "1", **env}, args)
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "refusing to run without AIPROXY_API_KEY on non-loopback address" in proc.stderr


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({}, ["--bind", f"0.0.0.0:{free_port()}"]),
        ({"GUNICORN_CMD_ARGS": f"--bind 0.0.0.0:{free_port()}"}, []),
    ],
    ids=["cli", "env-cmd-args"],
)
def test_bin_serve_keyless_refuses_non_loopback_bind(env: dict[str, str], args: list[str]) -> None:
    # bin/serve turns the development switch on because HOST is loopback; the bind decides.
    proc = _start({"AIPROXY_VENV": sys.prefix, **env}, args, cmd=[str(REPO / "bin" / "serve")])
    assert proc.returncode != 0, proc.stderr[-2000:]
    assert "non-loopback address 0.0.0.0" in proc.stderr


def test_worker_refuses_a_non_loopback_socket_it_was_handed() -> None:
    # The configured addresses say loopback, the socket is not: the worker checks what it serves on.
    from src.server import AIProxyWorker, is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("/tmp/sock")

    class Cfg:
        worker_connections = 10
        keepalive = 5

    class Sock:
        def getsockname(self) -> tuple[str, int]:
            return ("0.0.0.0", 8080)

    worker = AIProxyWorker.__new__(AIProxyWorker)
    worker.sockets = [Sock()]
    worker.cfg = Cfg()
    env = {"AIPROXY_ALLOW_UNAUTHENTICATED": "1", "AIPROXY_CONFIG_FILE": "/nonexistent"}
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith(("AIPROXY_", "OPENAI_"))}
    os.environ.update(env)
    try:
        with pytest.raises(SystemExit):
            worker._refuse_open_service_off_loopback()
        worker.sockets = []
        worker._refuse_open_service_off_loopback()  # no open socket: nothing to refuse
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


# --- slow and idle connections -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny() -> Iterator[Service]:
    env = {
        "AIPROXY_API_KEY": KEY,
        "GUNICORN_WORKER_CONNECTIONS": "20",
        "GUNICORN_HEADER_TIMEOUT": "2",
        "GUNICORN_KEEPALIVE": "3",
    }
    with Service(env, workers=1) as svc:
        yield svc


def _health(port: int, timeout: float = 10.0) -> tuple[int, float]:
    started = time.monotonic()
    raw = exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout=timeout)
    return int(raw.split()[1]), time.monotonic() - started


def test_health_answers_with_more_slow_sockets_than_connection_slots(tiny: Service) -> None:
    socks = []
    try:
        for i in range(60):  # 3x worker_connections: half silent, half trickling headers
            s = socket.create_connection(("127.0.0.1", tiny.port), timeout=10)
            if i % 2:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        for _ in range(3):
            status, took = _health(tiny.port)
            assert status == 200
            assert took < 5.0, took  # answered long before any of the slow sockets timed out
    finally:
        for s in socks:
            s.close()
    assert "connection slots nearly full" in tiny.logs()


def test_slow_headers_time_out_with_408_json(tiny: Service) -> None:
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=20) as s:
        started = time.monotonic()
        s.sendall(b"GET / HTTP/1.1\r\n")
        raw = b""
        try:
            for _ in range(30):  # one header byte a second: never completes within 2 s
                s.sendall(b"X")
                time.sleep(0.25)
        except OSError:
            pass
        try:
            while not _complete(raw):
                chunk = s.recv(65536)
                if not chunk:
                    break
                raw += chunk
        except ConnectionResetError:
            pass
        took = time.monotonic() - started
    status, _, body = parse(raw)
    assert (status, body["kind"]) == (408, "request_timeout")
    assert 1.5 < took < 12


def test_idle_keepalive_connection_is_closed_after_keepalive(tiny: Service) -> None:
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=20) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = b""
        while not _complete(raw):
            raw += s.recv(65536)
        assert b"keep-alive" in raw.lower()
        idle_from = time.monotonic()
        assert s.recv(1) == b""  # the server closes the idle connection
        took = time.monotonic() - idle_from
    assert 2.5 < took < 12


def test_a_head_split_across_writes_is_read_whole(tiny: Service) -> None:
    """The worker parses a head without its header timer only when the head has arrived whole; a head
    that ends in a later write (here between the two bytes of its last CRLF) waits for the rest."""
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=10) as s:
        rest = b""
        for first, second in (
            (b"GET / HTTP/1.1\r\nHost: x\r\n\r", b"\n"),
            (b"GET /nope HTTP/1.1\r\nHo", b"st: x\r\n\r\n"),
        ):
            s.sendall(first)
            time.sleep(0.3)
            s.sendall(second)
            head, body, rest = _read_answer(s, rest)
            assert head.startswith(b"HTTP/1.1 200" if first.startswith(b"GET / ") else b"HTTP/1.1 404"), head
        assert body and json.loads(body)["kind"]


def test_slow_body_after_headers_is_not_timed_out(tiny: Service) -> None:
    # Only header reading is time-limited: a body trickling for longer than the header timeout is read.
    with socket.create_connection(("127.0.0.1", tiny.port), timeout=20) as s:
        post_trickled_chat(s, KEY, 3.5)
        raw = b""
        while not _complete(raw):
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    status, _, answer = parse(raw)
    assert status == 400 and answer["kind"] == "unknown_model", (
        answer
    )  # the body arrived whole and was validated


def _read_answer(sock: socket.socket, buf: bytes, head_only: bool = False) -> tuple[bytes, bytes, bytes]:
    """One answer off a keep-alive socket: (head, body, bytes left over)."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a complete head: {buf[:200]!r}"
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if head_only:
        return head, b"", rest
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed inside a body"
        rest += chunk
    return head, rest[:length], rest[length:]


def test_response_heads_are_never_held_back(service: Service) -> None:
    """The worker sends a sized answer's head together with its body (one send). Whatever the
    answer, the head must still go out: HEAD (no body), pipelined requests, 100-continue, an
    error, and a stream (its head before its first event)."""
    chat = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        head, _, rest = _read_answer(sock, b"", head_only=True)
        assert head.startswith(b"HTTP/1.1 200") and b"content-length" in head.lower()
        # two requests in one write: two answers, in order, on the same connection
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body, rest = _read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 200") and body == b"Success."
        head, body, rest = _read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 404") and json.loads(body)["error"]
        # Expect: 100-continue, the body sent only after the interim answer
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n"
            % (KEY.encode(), len(chat))
        )
        while b"\r\n\r\n" not in rest:
            rest += sock.recv(65536)
        interim, _, rest = rest.partition(b"\r\n\r\n")
        assert interim.startswith(b"HTTP/1.1 100"), interim
        sock.sendall(chat)
        head, body, rest = _read_answer(sock, rest)
        assert head.startswith(b"HTTP/1.1 200"), head
        assert json.loads(body)["choices"][0]["message"]["content"]
        # a stream: the head arrives on its own, before the end of the events
        streamed = json.dumps({**json.loads(chat), "stream": True}).encode()
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
            % (KEY.encode(), len(streamed), streamed)
        )
        while b"\r\n\r\n" not in rest:
            rest += sock.recv(65536)
        head = rest.partition(b"\r\n\r\n")[0]
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head.lower()
        assert b"content-length" not in head.lower()
        while b"[DONE]" not in rest:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
