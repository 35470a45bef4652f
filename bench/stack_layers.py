"""Where a proxied chat's added latency goes, layer by layer, in one process (no gunicorn, no gevent).

    .venv/bin/python bench/stack_layers.py [--mock ours|aiohttp] [--blocks 6] [--per-block 300]
                                           [--json out.json]

Each layer sends the same chat completion to the same loopback stand-in (in its own process) and is
timed call by call; layers take turns in blocks, and a layer's figure is the median of its block
medians, so a machine that slows down mid-run slows every layer alike. "added" is a layer's median
minus the first one's (``http.client``, the cheapest way to make the call):

- ``http.client``     the standard library, one keep-alive connection
- ``httpcore2``       the connection pool under ``httpx2`` (with ``h11``)
- ``httpx2``          ``httpx2.Client`` on aiproxy's transport (lib/providers/openai/transport.py)
- ``openai SDK``      ``OpenAI.post`` exactly as lib/providers/openai does (same options and ``cast_to``)
- ``Flask + SDK``     bench/floor_app.py called as a WSGI app: the floor in bench/proxy_bench.py
- ``aiproxy``         the service's app (auth, validation, deadline, retries, metrics, ledger, logging)
                      called as a WSGI app, including what runs after the answer (log line, metrics)

The target of bench/proxy_bench.py's "overhead" section (added p50 <= 1.5 ms under gunicorn) is measured
there; this shows how much of it each part of the required stack spends before aiproxy's code runs.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.proxy_bench import CHAT, DIRECT_AUTH, KEY, MockProcess  # noqa: E402


def _wsgi_call(app: Any) -> Callable[[], None]:
    def call() -> None:
        status: list[str] = []
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/v1/chat/completions",
            "SERVER_NAME": "bench",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(CHAT)),
            "HTTP_AUTHORIZATION": KEY,
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(CHAT),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": True,
            "wsgi.run_once": False,
        }
        body = app(environ, lambda s, h, e=None: status.append(s))
        try:
            b"".join(body)
        finally:
            if hasattr(body, "close"):
                body.close()  # the log line and metrics run here, as gunicorn runs them
        if not status[0].startswith("200"):
            raise RuntimeError(f"WSGI call answered {status[0]}")

    return call


def layers(mock: MockProcess) -> dict[str, Callable[[], None]]:
    import httpcore2
    import httpx2
    import openai

    from lib.providers.openai.provider import NO_PLATFORM_HEADERS
    from lib.providers.openai.transport import DeadlineTransport

    url = f"{mock.base_url}/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": DIRECT_AUTH}
    conn = http.client.HTTPConnection("127.0.0.1", mock.port)

    def direct() -> None:
        conn.request("POST", "/v1/chat/completions", CHAT, headers)
        resp = conn.getresponse()
        resp.read()

    pool = httpcore2.ConnectionPool()

    def core() -> None:
        resp = pool.request("POST", url, headers=list(headers.items()), content=CHAT)
        resp.read()

    limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20)
    client = httpx2.Client(transport=DeadlineTransport(limits=limits))

    def httpx_call() -> None:
        client.post(url, content=CHAT, headers=headers).read()

    sdk = openai.OpenAI(
        api_key="sk-bench",
        base_url=mock.base_url,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(transport=DeadlineTransport(limits=limits)),
    )
    body = json.loads(CHAT)
    options: Any = {"timeout": 60.0, "security": {"bearer_auth": True}, "headers": NO_PLATFORM_HEADERS}

    def sdk_call() -> None:
        sdk.post(url, cast_to=httpx2.Response, body=body, options=options).json()

    os.environ.update(
        {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": "sk-bench",
            "OPENAI_BASE_URL": mock.base_url,
            "LOG_LEVEL": "INFO",
            "AIPROXY_CONFIG_FILE": "/nonexistent/config.txt",
            "DATA_DIR": tempfile.mkdtemp(prefix="aiproxy-stack-"),
        }
    )
    from bench.floor_app import app as floor_app
    from src.app import create_app

    service = create_app()
    for handler in logging.getLogger().handlers:  # the log line is formatted and written, to nowhere
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the process
    return {
        "http.client": direct,
        "httpcore2": core,
        "httpx2": httpx_call,
        "openai SDK": sdk_call,
        "Flask + SDK": _wsgi_call(floor_app),
        "aiproxy": _wsgi_call(service),
    }


def measure(kind: str, blocks: int, per_block: int) -> dict[str, Any]:
    mock = MockProcess(kind)
    try:
        calls = layers(mock)
        for call in calls.values():  # warm-up: imports, connection pools, caches
            for _ in range(200):
                call()
        medians: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(blocks):
            for name, call in calls.items():
                times = []
                for _ in range(per_block):
                    started = time.perf_counter()
                    call()
                    times.append(time.perf_counter() - started)
                medians[name].append(statistics.median(times) * 1e6)
    finally:
        mock.stop()
    base = statistics.median(medians["http.client"])
    return {
        name: {"p50_us": round(statistics.median(m)), "added_us": round(statistics.median(m) - base)}
        for name, m in medians.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mock", choices=("ours", "aiohttp"), default="ours")
    parser.add_argument("--blocks", type=int, default=6)
    parser.add_argument("--per-block", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = measure(args.mock, args.blocks, args.per_block)
    for name, row in result.items():
        print(f"{name:12s} p50 {row['p50_us']:6d} us   added {row['added_us']:6d} us")
    if args.json:
        tmp = args.json.with_suffix(".tmp")
        tmp.write_text(json.dumps({"mock": args.mock, "layers": result}, indent=2) + "\n")
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
