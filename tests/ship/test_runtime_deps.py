"""The production image installs only requirements.txt (WITH_LOCAL_MODELS=0 by default). Everything
the running service imports must therefore come from a distribution pinned there, not from one that
happens to be in the development venv through requirements-local.txt or requirements-dev.txt
(gunicorn's gevent worker imports ``packaging``, which gunicorn declares only as an extra)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from tests.ship import artefacts as a

# What a production worker and the bundled command-line tools load (the local provider is optional
# and imports its packages lazily, so it is left out here on purpose), then what serving loads:
# requests on every path that does not need a model answer, and upstream calls to closed ports.
SERVER_IMPORTS = """
import sys
at_start = set(sys.modules)  # the interpreter's own (e.g. a .pth hook), not the service's
"""

# The test venv also holds the test tools (requirements-dev.txt), and some runtime packages import an
# optional dependency whenever it is installed (the openai SDK loads aiohttp if it can): a production
# image would not have it. So the probe first hides every installed distribution that
# requirements.txt does not pin; a service module that needed one fails the probe with ImportError.
HIDE_UNPINNED = """
import importlib.abc, importlib.metadata as md, os, re
_pinned = set(os.environ["PROBE_PINNED"].split(","))
_hidden = {
    top
    for top, dists in md.packages_distributions().items()
    if not any(re.sub(r"[-_.]+", "-", d).lower() in _pinned for d in dists)
}

class _HideUnpinned(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _hidden:
            raise ModuleNotFoundError(f"{name} is not pinned in requirements.txt", name=name)
        return None

sys.meta_path.insert(0, _HideUnpinned())
"""

SERVING = """
import gunicorn.app.wsgiapp, gunicorn.workers.ggevent
import src.gunicorn_conf, src.wsgi
import lib.providers.openai.provider, lib.providers.bedrock.provider, lib.providers.local
import lib.assessment.rubric_tester, lib.dance.weights
client = src.wsgi.app.test_client()
auth = {"Authorization": "probe-key"}
assert client.get("/").status_code == 200
for path in ("/openapi.json", "/docs", "/metrics", "/v1/models"):
    assert client.get(path, headers=auth).status_code == 200, path
for model in ("gpt-4o", "bedrock.anthropic.claude-3-5-sonnet-20240620-v1:0"):
    chat = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    assert client.post("/v1/chat/completions", json=chat, headers=auth).status_code == 503, model
embed = {"model": "text-embedding-3-small", "input": "hi"}
assert client.post("/v1/embeddings", json=embed, headers=auth).status_code == 503
assert client.post("/test/assessment?model=gpt-4o", headers=auth).status_code == 503
"""

PROBE = (
    SERVER_IMPORTS
    + HIDE_UNPINNED
    + SERVING
    + """
import importlib.metadata as md, json, sys
owners = md.packages_distributions()
own = {"src", "lib", "tests"}
dists = set()
unowned = set()
for name, module in list(sys.modules.items()):
    if name in at_start:
        continue
    if getattr(module, "__file__", None) is None and not hasattr(module, "__path__"):
        continue  # built in or made at run time (e.g. Cython's cython_runtime)
    top = name.partition(".")[0]
    if top in owners:
        dists.update(owners[top])
    elif not (top in sys.stdlib_module_names or top in own or top.startswith("_") or top == "__main__"):
        unowned.add(top)
print(json.dumps({"dists": sorted(dists), "unowned": sorted(unowned)}))
"""
)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pinned() -> set[str]:
    names = set()
    for line in (a.ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(_norm(line.split("==", 1)[0]))
    return names


def test_everything_the_service_imports_is_pinned_in_requirements_txt() -> None:
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens, connections are refused
    env = {
        **os.environ,
        "AIPROXY_API_KEY": "probe-key",
        "AIPROXY_CONFIG_FILE": "/nonexistent/config.txt",
        "AWS_EC2_METADATA_DISABLED": "true",
        "OPENAI_API_KEY": "sk-probe",
        "OPENAI_BASE_URL": closed + "/v1",
        "AWS_ACCESS_KEY_ID": "AKIDPROBE",
        "AWS_SECRET_ACCESS_KEY": "probe-secret",
        "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": closed,
        "MAX_RETRIES": "0",
        "PROBE_PINNED": ",".join(sorted(_pinned())),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=a.ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    missing = sorted({_norm(d) for d in found["dists"]} - _pinned())
    assert missing == [], f"imported by the service but not pinned in requirements.txt: {missing}"
    assert found["unowned"] == [], f"modules with no installed distribution: {found['unowned']}"
