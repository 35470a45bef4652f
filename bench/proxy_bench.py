"""Service-core benchmark: the proxy under gunicorn against a loopback OpenAI stand-in.

    .venv/bin/python bench/proxy_bench.py [--only overhead,floor,throughput,concurrency,startup]
                                          [--json out.json]

1. overhead    added latency of the proxy over calling the mock directly, interleaved request by request,
               for chat and embeddings (target p50 <= 1.5 ms, p99 <= 5 ms)
1a. floor      the same measurement for bench/floor_app.py (Flask + the openai SDK under the same
               gunicorn config, none of aiproxy's features): the part of (1) that the stack costs
2. throughput  requests/s at 32 concurrent keep-alive clients through the proxy (target >= 250/s);
               uses wrk when installed (apt-get install wrk), else a Python client
3. concurrency 1000 concurrent chat requests to a mock that takes 2 s (target: 0 errors, wall <= 4 s,
               peak RSS of the whole service <= 300 MB)
4. startup     time from launching gunicorn to the first healthy answer on GET / (target <= 2 s)

The mock runs in its own process so that it does not share the GIL with the load client.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.server import Service, free_port  # noqa: E402

KEY = "bench-key"
CHAT = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "hello benchmark"}]}).encode()
EMBED = json.dumps({"model": "text-embedding-3-small", "input": "hello benchmark"}).encode()


class MockProcess:
    def __init__(self, delay: float = 0.0) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.openai_mock",
                "--port",
                str(self.port),
                "--delay",
                str(delay),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert self.proc.stdout is not None
        self.proc.stdout.readline()  # the port: the server is listening

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


def _service(mock: MockProcess, workers: int = 2, **env: str) -> Service:
    return Service(
        {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": mock.base_url,
            "LOG_LEVEL": "INFO",  # production logging: one JSON line per request
            **env,
        },
        workers=workers,
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, auth: bool) -> float:
    headers = {"Content-Type": "application/json"}
    if auth:
        headers["Authorization"] = KEY
    started = time.perf_counter()
    conn.request("POST", path, body, headers)
    resp = conn.getresponse()
    resp.read()
    elapsed = time.perf_counter() - started
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status}")
    return elapsed


def _interleaved(mock: MockProcess, port: int, path: str, body: bytes, n: int) -> dict[str, Any]:
    direct = http.client.HTTPConnection("127.0.0.1", mock.port)
    proxy = http.client.HTTPConnection("127.0.0.1", port)
    try:
        for _ in range(200):  # warm-up: imports, connection pools
            _post(direct, path, body, False)
            _post(proxy, path, body, True)
        added: list[float] = []
        d_times: list[float] = []
        for _ in range(n):
            d = _post(direct, path, body, False)
            p = _post(proxy, path, body, True)
            d_times.append(d)
            added.append(p - d)
    finally:
        direct.close()
        proxy.close()
    return {
        "requests": n,
        "direct_p50_ms": round(_percentile(d_times, 0.5) * 1000, 3),
        "added_p50_ms": round(_percentile(added, 0.5) * 1000, 3),
        "added_p99_ms": round(_percentile(added, 0.99) * 1000, 3),
    }


def overhead(n: int = 2000) -> dict[str, Any]:
    mock = MockProcess()
    try:
        with _service(mock, workers=1) as svc:
            return {
                "chat": _interleaved(mock, svc.port, "/v1/chat/completions", CHAT, n),
                "embeddings": _interleaved(mock, svc.port, "/v1/embeddings", EMBED, n),
            }
    finally:
        mock.stop()


def floor(n: int = 2000) -> dict[str, Any]:
    """The same measurement for bench/floor_app.py: Flask + the openai SDK under the service's
    gunicorn config, with none of aiproxy's features. What the service adds beyond this is theirs."""
    mock = MockProcess()
    try:
        svc = _service(mock, workers=1)
        svc.app = "bench.floor_app:app"
        with svc:
            return {"chat": _interleaved(mock, svc.port, "/v1/chat/completions", CHAT, n)}
    finally:
        mock.stop()


def _python_load(port: int, clients: int, seconds: float) -> tuple[int, int]:
    ok = 0
    errors = 0
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def worker() -> None:
        nonlocal ok, errors
        conn = http.client.HTTPConnection("127.0.0.1", port)
        mine_ok = mine_err = 0
        while time.monotonic() < stop_at:
            try:
                _post(conn, "/v1/chat/completions", CHAT, True)
                mine_ok += 1
            except Exception:
                mine_err += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port)
        with lock:
            ok += mine_ok
            errors += mine_err

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return ok, errors


def throughput(clients: int = 32, seconds: int = 15) -> dict[str, Any]:
    mock = MockProcess()
    try:
        with _service(mock, workers=2) as svc:
            _python_load(svc.port, 4, 2)  # warm-up
            wrk = shutil.which("wrk")
            if wrk:
                script = Path(svc.log_path).with_suffix(".lua")
                script.write_text(
                    'wrk.method = "POST"\n'
                    f"wrk.body = {json.dumps(CHAT.decode())}\n"
                    'wrk.headers["Content-Type"] = "application/json"\n'
                    f'wrk.headers["Authorization"] = "{KEY}"\n'
                )
                res = subprocess.run(
                    [
                        wrk,
                        "-t2",
                        f"-c{clients}",
                        f"-d{seconds}s",
                        "--latency",
                        "-s",
                        str(script),
                        svc.url + "/v1/chat/completions",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                rps = next(
                    float(line.split()[1])
                    for line in res.stdout.splitlines()
                    if line.startswith("Requests/sec")
                )
                non2xx = next(
                    (int(line.split()[-1]) for line in res.stdout.splitlines() if "Non-2xx" in line), 0
                )
                p99 = next(
                    (line.split()[1] for line in res.stdout.splitlines() if line.strip().startswith("99%")),
                    "",
                )
                return {
                    "client": "wrk",
                    "clients": clients,
                    "seconds": seconds,
                    "rps": round(rps, 1),
                    "non_2xx": non2xx,
                    "p99": p99,
                }
            ok, errors = _python_load(svc.port, clients, seconds)
            return {
                "client": "python",
                "clients": clients,
                "seconds": seconds,
                "rps": round(ok / seconds, 1),
                "errors": errors,
            }
    finally:
        mock.stop()


def _tree_rss_kb(root: int) -> int:
    """Resident memory of a process and all its descendants (kB)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
        except (OSError, IndexError):
            continue
    total = 0
    stack = [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
        stack.extend(children.get(pid, []))
    return total


def concurrency(requests: int = 1000, delay: float = 2.0) -> dict[str, Any]:
    mock = MockProcess(delay=delay)
    try:
        with _service(mock, workers=2) as svc:
            assert svc.proc is not None
            # warm both workers (imports, pools) so the measurement is steady state
            _python_load(svc.port, 8, delay + 0.5)
            peak = 0
            sampling = True

            def sample() -> None:
                nonlocal peak
                while sampling:
                    peak = max(peak, _tree_rss_kb(svc.proc.pid))  # type: ignore[union-attr]
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            idle_rss = _tree_rss_kb(svc.proc.pid)
            results: list[int] = []
            lock = threading.Lock()
            barrier = threading.Barrier(requests)

            def one() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", svc.port, timeout=30)
                try:
                    barrier.wait()
                    _post(conn, "/v1/chat/completions", CHAT, True)
                    status = 200
                except Exception:
                    status = 0
                finally:
                    conn.close()
                with lock:
                    results.append(status)

            threads = [threading.Thread(target=one, daemon=True) for _ in range(requests)]
            for t in threads:
                t.start()
            started = time.monotonic()
            for t in threads:
                t.join(60)
            wall = time.monotonic() - started
            sampling = False
            sampler.join()
            return {
                "requests": requests,
                "upstream_delay_s": delay,
                "errors": sum(1 for s in results if s != 200) + (requests - len(results)),
                "wall_s": round(wall, 2),
                "idle_rss_mb": round(idle_rss / 1024, 1),
                "peak_rss_mb": round(peak / 1024, 1),
            }
    finally:
        mock.stop()


def startup(runs: int = 5) -> dict[str, Any]:
    mock = MockProcess()
    times = []
    try:
        for _ in range(runs):
            svc = _service(mock, workers=2)
            started = time.monotonic()
            svc.start()
            times.append(time.monotonic() - started)
            svc.stop()
        # one more: first answer to a model route (lazy SDK import included)
        svc = _service(mock, workers=1)
        started = time.monotonic()
        svc.start()
        req = urllib.request.Request(
            svc.url + "/v1/chat/completions",
            data=CHAT,
            headers={"Authorization": KEY, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
        first_chat = time.monotonic() - started
        svc.stop()
    finally:
        mock.stop()
    return {
        "runs": runs,
        "healthy_median_s": round(statistics.median(times), 3),
        "healthy_max_s": round(max(times), 3),
        "first_chat_s": round(first_chat, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", default="overhead,floor,throughput,concurrency,startup")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    sections: dict[str, Callable[[], dict[str, Any]]] = {
        "overhead": overhead,
        "floor": floor,
        "throughput": throughput,
        "concurrency": concurrency,
        "startup": startup,
    }
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count()}}
    for name in args.only.split(","):
        results[name] = sections[name]()
        print(name, json.dumps(results[name]), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
