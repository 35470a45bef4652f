"""Start the real service under gunicorn (``bin/serve``'s config) on a free loopback port."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """``with Service(env={...}) as svc: svc.url`` — gunicorn in a subprocess, logs captured."""

    def __init__(
        self,
        env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        args: tuple[str, ...] = (),
        app: str = "src.wsgi:app",
        startup_timeout: float = 30.0,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = tempfile.NamedTemporaryFile(prefix="aiproxy-log-", suffix=".txt", delete=False)  # noqa: SIM115
        self.log_path = Path(self._log.name)
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("AIPROXY_", "OPENAI_", "DEFAULT_", "PROMETHEUS_MULTIPROC_DIR"))
            },
            "HOST": "127.0.0.1",
            "PORT": str(self.port),
            "WEB_CONCURRENCY": str(workers),
            "AIPROXY_CONFIG_FILE": "/nonexistent/config.txt",
            "AWS_EC2_METADATA_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
            "DATA_DIR": tempfile.mkdtemp(prefix="aiproxy-data-"),  # never the checkout's data/
            **(env or {}),
        }
        self.args = args
        self.app = app
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(REPO / "src" / "gunicorn_conf.py"),
                *self.args,
                self.app,
            ],
            cwd=REPO,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"service exited with {self.proc.returncode}:\n{self.logs(settle=0)}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"service did not become healthy:\n{self.logs(settle=0)}")

    def logs(self, settle: float = 0.2) -> str:
        """The log so far, once it has stopped growing for ``settle`` seconds (at most 3 s): the
        request line is written just after the response is sent, so a caller that has its answer
        may read the log a moment before its line lands."""
        self._log.flush()
        deadline = time.monotonic() + 3.0
        size = -1
        while time.monotonic() < deadline:
            now = self.log_path.stat().st_size
            if now == size:
                break
            size = now
            time.sleep(settle)
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._log.close()


def post_trickled_chat(sock: socket.socket, key: str, seconds: float) -> None:
    """Send ``POST /chat`` (``Connection: close``) on ``sock``: the head at once, then the body in
    10-byte pieces spread over ``seconds``, as a slow client does."""
    body = json.dumps({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}).encode()
    sock.sendall(
        f"POST /chat HTTP/1.1\r\nHost: x\r\nAuthorization: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
    )
    for i in range(0, len(body), 10):
        sock.sendall(body[i : i + 10])
        time.sleep(seconds / (len(body) / 10))
