"""Health-check latency while thousands of slow sockets are held open against the service.

Starts the service under gunicorn with bin/serve's defaults (src/gunicorn_conf.py), then opens
``--slow`` sockets (default 5,000: more than workers x worker_connections), half of them silent and
half trickling a header byte every few seconds, and reopens every one the server closes, as an
attacker would (``--no-reconnect``: open them once). Meanwhile ``GET /`` is timed ``--probes``
times, one at a time (a fresh connection each, like the load balancer's health check). The same
probes run first with no slow sockets.

``--slow-body``: every slow socket is instead an authenticated ``POST /chat`` whose headers arrive at
once and whose body (``Content-Length`` 100,000) trickles a byte every ``--drip`` s: the route is
blocked reading the body, which only the request deadline (150 s) or shedding near the connection
cap ends.

    .venv/bin/python bench/slowloris_bench.py [--slow 5000] [--probes 300] [--no-reconnect] [--stock]
        [--slow-body]

Prints one JSON object: health p50/p99/max (ms) and errors, without and with the slow sockets, how
many slow connections the server closed and how many of those it answered 408 first.
"""

from __future__ import annotations

import argparse
import json
import resource
import selectors
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.server import Service  # noqa: E402

HEALTH = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
KEY = "bench-key"
SLOW_HEADER = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: "
SLOW_BODY = (
    f"POST /chat HTTP/1.1\r\nHost: slow\r\nAuthorization: {KEY}\r\nContent-Type: application/json\r\n"
    "Content-Length: 100000\r\n\r\n{"
).encode()


def raise_nofile(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(need, soft)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        raise SystemExit(f"need {need} open files, the hard limit allows {soft}: raise it (ulimit -Hn)")


PROBE_TIMEOUT = 30.0


def probe(port: int, timeout: float | None = None) -> float | None:
    timeout = timeout or PROBE_TIMEOUT
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(HEALTH)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200") or not data.endswith(b"Success."):
            return None
    except OSError:
        return None
    return (time.perf_counter() - started) * 1000


def probes(port: int, n: int, interval: float) -> dict[str, float | int]:
    times, errors = [], 0
    for _ in range(n):
        ms = probe(port)
        if ms is None:
            errors += 1
        else:
            times.append(ms)
        time.sleep(interval)
    times.sort()
    if not times:
        return {"n": n, "errors": errors}
    return {
        "n": n,
        "errors": errors,
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "max_ms": round(times[-1], 2),
    }


class SlowCrowd:
    """``n`` slow sockets kept open: even ones silent, odd ones sending a header byte every ``drip`` s
    (``body``: every one sends a request's headers, then a body byte every ``drip`` s)."""

    def __init__(self, port: int, n: int, drip: float, reconnect: bool = True, body: bool = False) -> None:
        self.port, self.n, self.drip, self.reconnect, self.body = port, n, drip, reconnect, body
        self.sel = selectors.DefaultSelector()
        self.closed_by_server = 0
        self.answered_408 = 0
        self.opened = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> None:
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        self.sel.register(s, selectors.EVENT_READ, i)
        self.opened += 1
        if i % 2 or self.body:
            self._pending_drip.append((s, time.monotonic() + 0.5, False))

    def start(self) -> SlowCrowd:
        self._pending_drip: list[tuple[socket.socket, float, bool]] = []
        for i in range(self.n):
            self._open(i)
            if i % 200 == 199:
                time.sleep(0.05)  # within the listen backlog
        self.thread.start()
        return self

    def _run(self) -> None:
        first, drip = (SLOW_BODY, b" ") if self.body else (SLOW_HEADER, b"a")
        while not self._stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                s: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.1 408"):
                    self.answered_408 += 1
                if not data:  # the server closed it: reconnect, as an attacker would
                    self.sel.unregister(s)
                    s.close()
                    self.closed_by_server += 1
                    if self.reconnect and not self._stop.is_set():
                        self._open(key.data)
            now = time.monotonic()
            keep = []
            for s, due, started in self._pending_drip:
                if s.fileno() < 0:
                    continue
                if due <= now:
                    try:
                        s.send(drip if started else first)
                    except OSError:
                        continue
                    keep.append((s, now + self.drip, True))
                else:
                    keep.append((s, due, started))
            self._pending_drip = keep

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--slow", type=int, default=5000)
    ap.add_argument("--probes", type=int, default=300)
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between health probes")
    ap.add_argument("--drip", type=float, default=3.0, help="seconds between bytes on trickling sockets")
    ap.add_argument("--workers", type=int, default=0, help="0 = bin/serve's default")
    ap.add_argument(
        "--stock", action="store_true", help="gunicorn's own gevent worker instead of src/server.py (before)"
    )
    ap.add_argument("--probe-timeout", type=float, default=30.0, help="a probe slower than this is an error")
    ap.add_argument(
        "--no-reconnect", action="store_true", help="do not reopen the slow sockets the server closes"
    )
    ap.add_argument(
        "--slow-body",
        action="store_true",
        help="slow sockets send an authenticated POST's headers, then trickle its body",
    )
    args = ap.parse_args()
    raise_nofile(args.slow + 200)
    global PROBE_TIMEOUT
    PROBE_TIMEOUT = args.probe_timeout

    env = {"AIPROXY_API_KEY": KEY}
    if args.workers:
        env["WEB_CONCURRENCY"] = str(args.workers)
    svc = Service(env, workers=args.workers or 0, args=("--worker-class", "gevent") if args.stock else ())
    if not args.workers:
        svc.env.pop("WEB_CONCURRENCY", None)
    with svc:
        quiet = probes(svc.port, args.probes, args.interval)
        crowd = SlowCrowd(
            svc.port, args.slow, args.drip, reconnect=not args.no_reconnect, body=args.slow_body
        ).start()
        time.sleep(3)  # let the crowd reach the server
        try:
            loaded = probes(svc.port, args.probes, args.interval)
        finally:
            crowd.stop()
        logs = svc.logs()
    print(
        json.dumps(
            {
                "slow_sockets": args.slow,
                "reconnect": not args.no_reconnect,
                "slow": "request bodies" if args.slow_body else "half silent, half trickling headers",
                "worker": "gunicorn gevent (stock)" if args.stock else "src.server.AIProxyWorker",
                "workers": args.workers or "default",
                "health_quiet": quiet,
                "health_with_slow_sockets": loaded,
                "slow_connections_closed_by_server": crowd.closed_by_server,
                "of_which_answered_408": crowd.answered_408,
                "shedding_logged": "connection slots nearly full" in logs,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
