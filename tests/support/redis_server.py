"""A real ``redis-server`` on a free loopback port, for the limit tests (no data saved to disk).

``TEST_REDIS_URL`` (set by bin/test.sh) wins for tests that only need *a* Redis; tests that stop
Redis on purpose start their own with ``RedisServer``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator

import redis

from tests.support.server import free_port

NO_REDIS = (
    "no Redis for this test: TEST_REDIS_URL is unset and redis-server is not on PATH "
    "(bin/test.sh installs and starts one; or apt-get install redis-server)"
)


def redis_server_binary() -> str | None:
    return shutil.which("redis-server")


@contextlib.contextmanager
def shared_redis_url() -> Iterator[str]:
    """``TEST_REDIS_URL`` when set, else the URL of a ``redis-server`` started here for the block:
    what the limit tests and the benches that only need *a* Redis use."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


class RedisServer:
    """``with RedisServer() as srv: srv.url``; ``kill()`` and ``start()`` again on the same port."""

    def __init__(self, port: int | None = None) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise RuntimeError(NO_REDIS)
        self.binary = binary
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=os.environ.get("TMPDIR", "/tmp"),
        )
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                try:
                    if client.ping():
                        return self
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.kill()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """Stop at once (SIGKILL): what a crashed Redis looks like to the service."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
