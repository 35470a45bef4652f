"""Compare the added latency of two (or more) checkouts, service starts alternating, on the same machine.

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/ab_trees.py /tmp/before . . /tmp/before [--rounds 4] [--requests 1500]
                                       [--mock ours|aiohttp] [--app src.wsgi:app]

Each round starts every listed tree's service in turn (its own code, this venv's interpreter) and runs
bench/proxy_bench.py's interleaved measurement against it: ``--requests`` chats, each paired with a
direct call to the same stand-in, after a warm-up of 300. It also reads the worker's CPU time from
/proc. It prints each run, then per tree the median over rounds of added p50 and p99, and of worker CPU
per proxied call.

The machine's speed drifts within minutes, so list the trees in ABBA order (a tree listed twice is
measured twice and reported under both spellings, ``.`` and ``./``). Two identical trees differ by up to
about 0.1 ms of p50 in this harness: a smaller difference is not a result.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

# Runs inside the tree being measured, so its own bench/, tests/support/ and src/ are used.
_ONE_RUN = r"""
import json, os, subprocess, sys
sys.path.insert(0, os.getcwd())
from bench.proxy_bench import CHAT, MockProcess, _interleaved, _service

def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

kind, app, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
mock = MockProcess(kind)
try:
    svc = _service(mock, workers=1)
    svc.app = app
    with svc:
        _interleaved(mock, svc.port, "/v1/chat/completions", CHAT, 100)
        worker = subprocess.check_output(["pgrep", "-P", str(svc.proc.pid)]).split()[0].decode()
        before = cpu_s(worker)
        result = _interleaved(mock, svc.port, "/v1/chat/completions", CHAT, n)
        # _interleaved warms up with 200 pairs of its own: they count in the worker's CPU too
        result["worker_cpu_ms"] = round((cpu_s(worker) - before) / (n + 200) * 1000, 3)
finally:
    mock.stop()
print(json.dumps(result))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("trees", nargs="+", help="checkouts to compare (git worktrees), in the order to run")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--mock", choices=("ours", "aiohttp"), default="ours")
    parser.add_argument("--app", default="src.wsgi:app")
    args = parser.parse_args()
    runs: dict[str, list[dict[str, float]]] = {tree: [] for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            done = subprocess.run(
                [sys.executable, "-c", _ONE_RUN, args.mock, args.app, str(args.requests)],
                cwd=Path(tree).resolve(),
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                raise SystemExit(f"{tree}: {done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            runs[tree].append(result)
            print(tree, json.dumps(result), flush=True)
    for tree, results in runs.items():
        summary = {
            key: round(statistics.median(r[key] for r in results), 3)
            for key in ("added_p50_ms", "added_p99_ms", "direct_p50_ms", "worker_cpu_ms")
        }
        print("median", tree, json.dumps(summary))


if __name__ == "__main__":
    main()
