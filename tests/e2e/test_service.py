"""The real service under gunicorn (gevent workers), called with the official openai SDK."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from tests.support.openai_mock import CHAT, OpenAIMock, Reply, error
from tests.support.server import REPO, Service

pytestmark = pytest.mark.e2e
KEY = "e2e-key"
OPENAI_KEY = "sk-e2e-secret-openai-key"


@pytest.fixture(scope="module")
def upstream() -> Iterator[OpenAIMock]:
    with OpenAIMock() as mock:
        yield mock


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def service(upstream: OpenAIMock, metrics_dir: Path) -> Iterator[Service]:
    env = {
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "AIPROXY_API_KEY": f"old-key,{KEY}",
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "REQUEST_DEADLINE_SECONDS": "3",
        "RETRY_BASE_DELAY_SECONDS": "0.01",
    }
    with Service(env, workers=2) as svc:
        yield svc


@pytest.fixture
def sdk(service: Service) -> openai.OpenAI:
    return openai.OpenAI(base_url=service.url + "/v1", api_key=KEY, max_retries=0)


def test_sdk_chat(sdk: openai.OpenAI) -> None:
    r = sdk.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hello there"}], n=2
    )
    assert [c.message.content for c in r.choices] == ["echo: hello there"] * 2
    assert r.usage is not None and r.usage.total_tokens > 0


def test_sdk_stream_with_usage(sdk: openai.OpenAI) -> None:
    stream = sdk.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "one two three"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]


def test_sdk_embeddings_base64_and_float(sdk: openai.OpenAI) -> None:
    default = sdk.embeddings.create(model="text-embedding-3-small", input=["cat", "dog"])
    floats = sdk.embeddings.create(
        model="text-embedding-3-small", input=["cat", "dog"], encoding_format="float"
    )
    assert len(default.data) == 2
    assert default.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)


def test_sdk_models_and_errors(sdk: openai.OpenAI, service: Service) -> None:
    assert "local" in [m.id for m in sdk.models.list()]
    with pytest.raises(openai.BadRequestError, match="unknown model"):
        sdk.chat.completions.create(model="nope", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=service.url + "/v1", api_key="wrong", max_retries=0).models.list()
    rotated = openai.OpenAI(base_url=service.url + "/v1", api_key="old-key", max_retries=0)
    assert rotated.models.list().data


def _served(service: Service, route: str) -> float:
    req = urllib.request.Request(service.url + "/metrics", headers={"Authorization": KEY})
    with urllib.request.urlopen(req, timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "aiproxy_http_requests_total" and sample.labels.get("route") == route:
                total += sample.value
    return total


def _workers_that_served(metrics_dir: Path, route: str) -> int:
    """How many worker processes counted a request to ``route`` (each writes its own file)."""
    workers = 0
    for path in metrics_dir.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            name, _sample, labels, *_ = json.loads(key)
            if name == "aiproxy_http_requests" and labels.get("route") == route and value > 0:
                workers += 1
                break
    return workers


def test_metrics_add_up_across_workers(service: Service, metrics_dir: Path) -> None:
    # Two workers. Requests on fresh connections until both have served some; the scrape, answered
    # by either worker, must report every request.
    route = "/openapi.json"
    before = _served(service, route)
    sent = 0
    while sent < 20 or _workers_that_served(metrics_dir, route) < 2:
        assert sent < 400, "one worker served every request"
        req = urllib.request.Request(service.url + route, headers={"Connection": "close"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200
        sent += 1
        time.sleep(0.01)  # accounting runs just after the response is sent
    deadline = time.monotonic() + 3
    while (seen := _served(service, route) - before) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    assert seen == sent


def test_hang_ends_with_504_within_deadline_and_worker_stays_healthy(
    sdk: openai.OpenAI, upstream: OpenAIMock, service: Service
) -> None:
    upstream.script(CHAT, *[Reply(hang=True)] * 4)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 504
    assert time.monotonic() - started < 4.5
    upstream.clear(CHAT)
    with urllib.request.urlopen(service.url + "/", timeout=2) as resp:
        assert resp.read() == b"Success."
    r = sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "after"}])
    assert r.choices[0].message.content == "echo: after"


def test_logs_hold_no_secret_and_no_content(
    sdk: openai.OpenAI, upstream: OpenAIMock, service: Service
) -> None:
    secret_text = "student-secret-program-text"
    sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": secret_text}])
    upstream.script(CHAT, error(401, "bad key", type_="authentication_error"))
    with pytest.raises(openai.APIStatusError):
        sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": secret_text}])
    logs = service.logs()
    assert '"route": "/v1/chat/completions"' in logs
    for secret in (secret_text, OPENAI_KEY, KEY, "old-key"):
        assert secret not in logs


def test_graceful_shutdown_finishes_in_flight_requests(upstream: OpenAIMock) -> None:
    env = {
        "AIPROXY_API_KEY": KEY,
        "OPENAI_API_KEY": OPENAI_KEY,
        "OPENAI_BASE_URL": upstream.base_url,
        "GUNICORN_GRACEFUL_TIMEOUT": "8",
    }
    svc = Service(env, workers=1).start()
    try:
        upstream.script(
            CHAT,
            Reply(
                body=None,
                delay=3.0,
                raw=b'{"id":"x","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"slow"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}',
                headers={"Content-Type": "application/json"},
            ),
        )
        result: dict[str, object] = {}

        def call() -> None:
            with openai.OpenAI(base_url=svc.url + "/v1", api_key=KEY, max_retries=0) as client:
                r = client.chat.completions.create(
                    model="gpt-4o", messages=[{"role": "user", "content": "x"}]
                )
                result["text"] = r.choices[0].message.content

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)  # the request is in flight
        assert svc.proc is not None
        svc.proc.send_signal(signal.SIGTERM)
        time.sleep(1.5)  # workers close their listeners within their 1 s loop tick
        with pytest.raises(OSError):  # no new connections once shutdown has begun
            urllib.request.urlopen(svc.url + "/", timeout=2)
        t.join(10)
        assert result.get("text") == "slow"
        assert svc.proc.wait(20) == 0  # within the 8 s grace period plus start-up slack on a busy machine
    finally:
        svc.stop()


def _gunicorn(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", "src/gunicorn_conf.py", "src.wsgi:app"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _base_env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIPROXY_", "OPENAI_"))}
    env.update({"AIPROXY_CONFIG_FILE": "/nonexistent", "PORT": "0", **extra})
    return env


def test_start_without_key_is_refused() -> None:
    proc = _gunicorn(_base_env(HOST="127.0.0.1"))
    assert proc.returncode != 0
    assert "AIPROXY_API_KEY is not set" in proc.stderr


def test_development_switch_is_refused_off_loopback() -> None:
    proc = _gunicorn(_base_env(HOST="0.0.0.0", AIPROXY_ALLOW_UNAUTHENTICATED="1"))
    assert proc.returncode != 0
    assert "non-loopback" in proc.stderr


def test_invalid_setting_stops_start_up_naming_it() -> None:
    proc = _gunicorn(_base_env(HOST="127.0.0.1", AIPROXY_API_KEY="k", MAX_RETRIES="many"))
    assert proc.returncode != 0
    assert "MAX_RETRIES" in proc.stderr


def test_development_switch_on_loopback_runs_open_with_warning() -> None:
    with Service({"AIPROXY_ALLOW_UNAUTHENTICATED": "1"}) as svc:
        with urllib.request.urlopen(svc.url + "/v1/models", timeout=5) as resp:
            assert resp.status == 200
        assert "every route is OPEN" in svc.logs()


def test_every_worker_freezes_the_loaded_app_out_of_the_gc(service: Service) -> None:
    """src/gunicorn_conf.py's post_worker_init: without it a full collection walked every object of the
    loaded app (an 80-105 ms pause about every 13 s under steady traffic, bench/proxy_bench.py)."""
    frozen = re.findall(r"worker \d+: (\d+) objects of the loaded app frozen out of the GC", service.logs())
    assert len(frozen) == 2, service.logs()[-2000:]  # one line per worker
    assert all(int(n) > 50_000 for n in frozen), frozen  # about 88,000 in each worker today
