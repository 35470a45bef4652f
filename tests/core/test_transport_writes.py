"""The deadline transport sends a request's head and body with one ``send`` (not one per h11
event), a large body in pieces, and never holds bytes across a read: checked on the socket writes
reaching a real ``httpcore2`` backend, against a raw-socket HTTP server of this file."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpcore2
import httpx2
import pytest

from lib.providers.openai.transport import DeadlineTransport


class _CountingStream(httpcore2.NetworkStream):
    def __init__(self, stream: httpcore2.NetworkStream, writes: list[int]) -> None:
        self._stream = stream
        self._writes = writes

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._writes.append(len(buffer))
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _CountingBackend(httpcore2.SyncBackend):
    def __init__(self) -> None:
        self.writes: list[int] = []

    def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return _CountingStream(super().connect_tcp(*args, **kwargs), self.writes)


def _read_request(conn: socket.socket, buf: bytes) -> tuple[bytes, bytes, bytes]:
    while b"\r\n\r\n" not in buf:
        buf += conn.recv(65536)
    head, body = buf.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head, body[:length], body[length:]


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """Keep-alive HTTP/1.1 server answering each request with its body's length."""
    bodies: list[bytes] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        rest = b""
        with conn:
            while True:
                try:
                    _head, body, rest = _read_request(conn, rest)
                except (OSError, StopIteration, IndexError):
                    return
                bodies.append(body)
                answer = str(len(body)).encode()
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1], bodies
    listener.close()


def test_head_and_body_go_out_in_one_send_and_large_bodies_in_pieces(server: tuple[int, list[bytes]]) -> None:
    port, bodies = server
    backend = _CountingBackend()
    client = httpx2.Client(transport=DeadlineTransport(limits=httpx2.Limits(), backend=backend))
    small = b'{"model": "gpt-4o", "messages": []}'
    assert client.post(f"http://127.0.0.1:{port}/v1/chat/completions", content=small).text == str(len(small))
    assert len(backend.writes) == 1  # head + body coalesced (two h11 events)
    backend.writes.clear()
    large = bytes(range(256)) * 1024  # 256 KiB in 16-KiB pieces: sent as it fills, never held whole
    pieces = (large[i : i + 16384] for i in range(0, len(large), 16384))
    answer = client.post(
        f"http://127.0.0.1:{port}/v1/embeddings", content=pieces, headers={"Content-Length": str(len(large))}
    )
    assert answer.text == str(len(large))
    assert len(backend.writes) >= 4
    assert max(backend.writes) < 96 * 1024
    backend.writes.clear()
    assert (
        client.get(f"http://127.0.0.1:{port}/v1/models", headers={"Content-Length": "0"}).status_code == 200
    )
    assert len(backend.writes) == 1  # a request without a body is flushed before its answer is read
    assert bodies == [small, large, b""]
    client.close()
