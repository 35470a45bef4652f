"""What holding OpenAI calls to the request deadline costs per call.

    .venv/bin/python bench/deadline_overhead.py [--calls 3000] [--rounds 5]

``OpenAIProvider`` (the real ``openai`` SDK) calls ``/v1/chat/completions`` on the loopback OpenAI
stand-in, alternating call by call between two identical clients, one on the stock ``httpx2``
transport and one on ``DeadlineTransport`` (``lib.providers.openai.transport``); each round reports
both median call times, and the script prints the median over rounds of the difference. It also counts
the socket operations one call makes and times the wrapper alone (a deadline-bound read on a stream
that returns at once), which bounds the cost from below without network noise.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpcore2
import httpx2
import openai

from lib.providers.base import ChatRequest, Message
from lib.providers.deadline import Deadline, bind, unbind
from lib.providers.openai import OpenAIProvider
from lib.providers.openai.transport import DeadlineStream, DeadlineTransport
from lib.settings import load_settings
from tests.support.openai_mock import OpenAIMock


class _Instant(httpcore2.NetworkStream):
    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return b"x"


class _Counting(httpcore2.NetworkBackend):
    def __init__(self) -> None:
        self.ops = 0
        self._inner = httpcore2.SyncBackend()

    def connect_tcp(self, *a: object, **kw: object) -> httpcore2.NetworkStream:
        backend = self
        stream = self._inner.connect_tcp(*a, **kw)  # type: ignore[arg-type]

        class Counted(httpcore2.NetworkStream):
            def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
                backend.ops += 1
                return stream.read(max_bytes, timeout)

            def write(self, buffer: bytes, timeout: float | None = None) -> None:
                backend.ops += 1
                stream.write(buffer, timeout)

            def close(self) -> None:
                stream.close()

            def get_extra_info(self, info: str) -> object:
                return stream.get_extra_info(info)

        return Counted()


def _provider(base_url: str, transport: httpx2.BaseTransport) -> OpenAIProvider:
    """The service's OpenAI provider, its SDK client rebuilt on ``transport`` (all else equal)."""
    prov = OpenAIProvider(
        load_settings(config_file="/nonexistent", openai_api_key="sk-bench", openai_base_url=base_url)
    )
    prov.client = prov.client.with_options(http_client=openai.DefaultHttpxClient(transport=transport))
    prov._urls = {p: f"{prov.client.base_url}{p}" for p in ("chat/completions", "embeddings")}
    return prov


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    req = ChatRequest("gpt-4o", [Message("user", "hello")])

    stream = DeadlineStream(_Instant())
    n = 200_000
    bare = timeit.timeit(lambda: _Instant().read(1), number=n) / n
    token = bind(Deadline(60.0))
    wrapped = timeit.timeit(lambda: stream.read(1), number=n) / n
    unbind(token)
    bind_cost = timeit.timeit(lambda: unbind(bind(None)), number=n) / n

    limits = httpx2.Limits(max_connections=8, max_keepalive_connections=8)
    with OpenAIMock() as mock:
        counting = _Counting()
        probe = _provider(mock.base_url, DeadlineTransport(limits=limits, backend=counting))
        for _ in range(10):
            probe.chat(req, Deadline(30))
        counting.ops = 0
        probe.chat(req, Deadline(30))
        ops = counting.ops

        variants = {
            "stock": _provider(mock.base_url, httpx2.HTTPTransport(limits=limits)),
            "deadline": _provider(mock.base_url, DeadlineTransport(limits=limits)),
        }
        diffs = []
        for r in range(args.rounds):
            times: dict[str, list[float]] = {"stock": [], "deadline": []}
            order = ["stock", "deadline"]
            for i in range(args.calls * 2 + 100):
                name = order[(i + r) % 2]  # alternate call by call: drift hits both alike
                t = time.perf_counter()
                variants[name].chat(req, Deadline(30))
                if i >= 100:
                    times[name].append(time.perf_counter() - t)
            medians = {k: statistics.median(v) for k, v in times.items()}
            diffs.append(medians["deadline"] - medians["stock"])
            print(
                f"round {r + 1}: stock p50 {medians['stock'] * 1e3:.3f} ms, "
                f"deadline p50 {medians['deadline'] * 1e3:.3f} ms, diff {diffs[-1] * 1e6:+.1f} us"
            )
    print(f"socket operations per chat call: {ops}")
    print(
        f"wrapper per operation: {(wrapped - bare) * 1e9:.0f} ns; "
        f"bind+unbind per call: {bind_cost * 1e9:.0f} ns"
    )
    print(f"=> wrapper cost per call about {((wrapped - bare) * ops + bind_cost) * 1e6:.2f} us")
    print(f"end to end, median of per-round p50 differences: {statistics.median(diffs) * 1e6:+.1f} us")


if __name__ == "__main__":
    main()
