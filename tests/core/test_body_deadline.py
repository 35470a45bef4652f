"""The body read bound of ``src/body_limit.py`` on real sockets: a silent client and (under gevent,
the service's worker) a client trickling a byte at a time both end at the body's deadline, and the
socket's own timeout is restored after each read."""

from __future__ import annotations

import socket
import time
from typing import Any

import gevent
import gevent.socket
import pytest

from src.body_limit import BodyTimeout, _CountingInput


class LoopingReader:
    """Like gunicorn's body reader: one ``read(n)`` waits on the socket as often as it takes."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock

    def read(self, size: int | None = -1) -> bytes:
        out = b""
        while size is None or size < 0 or len(out) < size:
            chunk = self.sock.recv(1 if size is None or size < 0 else size - len(out))
            if not chunk:
                break
            out += chunk
        return out


def test_a_silent_client_ends_at_the_deadline_and_the_socket_timeout_is_restored() -> None:
    server, client = socket.socketpair()
    with server, client:
        body = _CountingInput(LoopingReader(server), 1000, server, 0.3)
        client.sendall(b"ab")
        assert body.read(2) == b"ab" and server.gettimeout() is None
        started = time.monotonic()
        with pytest.raises(BodyTimeout, match=r"0\.3 s"):
            body.read(10)
        assert time.monotonic() - started < 1.0 and server.gettimeout() is None
        with pytest.raises(BodyTimeout):  # nothing left: at once
            body.read(1)


def test_a_trickling_client_ends_at_the_deadline_under_gevent() -> None:
    server, client = gevent.socket.socketpair()

    def trickle() -> None:
        for _ in range(50):
            client.sendall(b"x")
            gevent.sleep(0.05)

    sender = gevent.spawn(trickle)
    try:
        body = _CountingInput(LoopingReader(server), 1000, server, 0.4)
        started = time.monotonic()
        with pytest.raises(BodyTimeout):
            body.read(100)  # each byte arrives well inside any per-wait timeout
        assert time.monotonic() - started < 1.0
    finally:
        sender.kill()
        server.close()
        client.close()


def test_without_a_socket_reads_are_not_bounded() -> None:
    server, client = socket.socketpair()
    with server, client:
        client.sendall(b"hello")
        assert _CountingInput(LoopingReader(server), 1000, None, 0.01).read(5) == b"hello"
