"""Two gunicorn workers share a burst of new connections (src/accept_share.py): 300 chats opened at
once to a stand-in that takes 3 s are split between the workers, counted from the outside as the
established sockets each worker process holds (/proc), while all are in flight."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.openai_mock import OpenAIMock
from tests.support.server import Service

pytestmark = pytest.mark.e2e
KEY = "burst-key"
BURST = 300


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock(delay=3.0) as mock:
        yield mock


def _workers(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True, check=False).stdout
    return [int(p) for p in out.split()]


def _established_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":  # ESTABLISHED, accepted on the service port
                inodes.add(fields[9])
    return inodes


def _connections_per_worker(master: int, port: int) -> dict[int, int]:
    inodes = _established_inodes(port)
    counts: dict[int, int] = {}
    for pid in _workers(master):
        n = 0
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = fd.readlink().as_posix()
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


def test_two_workers_share_a_burst(upstream: OpenAIMock) -> None:
    env = {"AIPROXY_API_KEY": KEY, "OPENAI_API_KEY": "sk-burst", "OPENAI_BASE_URL": upstream.base_url}
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: {KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    with Service(env, workers=2) as svc:
        assert svc.proc is not None
        for _ in range(2):  # both workers import and connect before the burst
            warm = [socket.create_connection(("127.0.0.1", svc.port), timeout=30) for _ in range(8)]
            for s in warm:
                s.sendall(request)
            for s in warm:
                while s.recv(65536):
                    pass
                s.close()
        socks = []
        try:
            # Connect all first (the kernel completes each handshake at once, the workers race to
            # accept them), then send every request.
            socks = [socket.create_connection(("127.0.0.1", svc.port), timeout=60) for _ in range(BURST)]
            for s in socks:
                s.sendall(request)
            time.sleep(1.0)  # all accepted, all waiting on the 3-s upstream
            counts = _connections_per_worker(svc.proc.pid, svc.port)
            answers = []
            for s in socks:
                raw = b""
                while chunk := s.recv(65536):
                    raw += chunk
                answers.append(raw.split(b" ", 2)[1])
        finally:
            for s in socks:
                s.close()
    assert answers == [b"200"] * BURST
    assert len(counts) == 2 and sum(counts.values()) >= BURST * 0.9, counts
    assert min(counts.values()) >= BURST * 0.4, counts  # without sharing, one worker took up to 2/3
