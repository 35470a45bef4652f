"""Under gevent (the production worker class), local inference must not stall the hub."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from tests.local.conftest import needs_models
from tests.support.server import REPO

pytestmark = [pytest.mark.local, needs_models]


def probe(mode: str) -> dict[str, Any]:
    """The probe's report; it must also exit (about 20 s in all). A process that printed its report
    and then hung at exit was the symptom of transformers' loader threads under gevent."""
    try:
        out = subprocess.run(
            [sys.executable, "-m", "tests.local.gevent_probe", mode],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=150,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        printed = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout
        pytest.fail(f"the probe did not exit within 150 s (it printed: {(printed or '')[:300]!r})")
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_generation_on_os_threads_keeps_the_hub_responsive() -> None:
    result = probe("offload")
    assert result["patched"]
    assert result["runner_thread_differs"]
    assert result["chat_text"].strip()
    assert result["stream_equals_chat"]
    assert result["third_refused"]  # 1 running + 1 queued, the third gets CapacityError
    assert result["max_gap_ms"] < 100, result


def test_control_inline_generation_does_stall_the_hub() -> None:
    """The same workload run on the hub thread blocks the ticker for a whole generation; this is
    what the test above guards against (and shows that it can fail)."""
    result = probe("inline")
    assert result["patched"]
    assert result["max_gap_ms"] > 500, result
