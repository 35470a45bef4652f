"""bench/stack_layers.py runs and every layer really makes the call (a non-200 fails the run)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_stack_layers_bench_measures_every_layer(tmp_path: Path) -> None:
    out = tmp_path / "layers.json"
    run = subprocess.run(
        [sys.executable, "bench/stack_layers.py", "--blocks", "1", "--per-block", "3", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    layers = json.loads(out.read_text())["layers"]
    assert list(layers) == ["http.client", "httpcore2", "httpx2", "openai SDK", "Flask + SDK", "aiproxy"]
    assert layers["http.client"]["added_us"] == 0
    assert all(row["p50_us"] > 0 for row in layers.values())
