"""Fault injection end to end: the real service under gunicorn, upstreams that misbehave on purpose.

    .venv/bin/python bench/faults.py [--deadline 5] [--workers 2] [--json out.json]

Each fault is injected on the loopback OpenAI / bedrock-runtime stand-in for every call of one request
(so retries meet it too), then one request goes through ``/chat``, ``/v1/chat/completions`` and the
web app's form post to ``/assessment``. A case passes when the answer has the documented status and
kind (API.md, ``src/errors.py`` ``STATUS_BY_KIND``), ``Retry-After`` where documented, arrives within the
request deadline (+ 1.5 s), and the next, healthy request on the same route is a 200 (the worker is fine).
At the end the service log is searched for every key and for the student's program.

``tests/e2e/test_faults.py`` runs the same cases (``FAULTS``, ``ROUTES``, ``FaultRig``) as pytest tests.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support import bedrock_mock as bm  # noqa: E402
from tests.support import openai_mock as om  # noqa: E402
from tests.support.server import Service  # noqa: E402

KEY = "faults-aiproxy-key"
OPENAI_KEY = "sk-faults-configured-openai-key"
REQUEST_KEY = "sk-faults-per-request-key"
AWS_SECRET = "faults-dummy-aws-secret-key"
STUDENT_MARKER = "faults-student-code-marker"
SONNET = "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"
OPENAI_MODEL = "gpt-4o"
DATA = REPO / "tests" / "data" / "codeorg-aiproxy"
ROUTES = ("/chat", "/v1/chat/completions", "/assessment")
#: Enough scripted faults for the first attempt and every retry of one request.
ATTEMPTS = 8
SLACK_S = 1.5

_HTML = b"<html><body>502 Bad Gateway</body></html>"
_TRUNCATED = json.dumps(om.completion("a complete answer")).encode()[:57]


@dataclass(frozen=True)
class Fault:
    name: str
    upstream: str  # "openai" | "bedrock"
    make: Callable[[], Any]  # one scripted reply (om.Reply or bm.Reply)
    status: int
    kind: str
    retry_after: bool = False  # the answer must carry Retry-After
    retried: bool = True  # the gateway tries again (so the upstream sees more than one call)


def _openai_error(status: int, message: str, type_: str, code: str | None = None, **headers: str) -> om.Reply:
    reply = om.error(status, message, type_=type_, code=code)
    reply.headers.update(headers)
    return reply


FAULTS: list[Fault] = [
    Fault(
        "OpenAI 429 + Retry-After: 1",
        "openai",
        lambda: _openai_error(429, "Rate limit reached", "rate_limit_error", "rate_limit_exceeded", **{
            "Retry-After": "1"
        }),
        429,
        "rate_limited",
        retry_after=True,
    ),
    Fault("OpenAI 500", "openai", lambda: _openai_error(500, "server error", "server_error"), 503,
          "upstream_unavailable", retry_after=True),
    Fault("OpenAI 503", "openai", lambda: _openai_error(503, "overloaded", "server_error"), 503,
          "upstream_unavailable", retry_after=True),
    Fault("OpenAI hangs", "openai", lambda: om.Reply(hang=True), 504, "timeout", retried=False),
    Fault("OpenAI resets the connection", "openai", lambda: om.Reply(reset=True), 503, "upstream_unavailable",
          retry_after=True),
    Fault(
        "OpenAI truncated JSON body",
        "openai",
        lambda: om.Reply(raw=_TRUNCATED, headers={"Content-Type": "application/json"}),
        502,
        "invalid_upstream_response",
    ),
    Fault(
        "OpenAI non-JSON body (HTML 200)",
        "openai",
        lambda: om.Reply(raw=_HTML, headers={"Content-Type": "text/html"}),
        502,
        "invalid_upstream_response",
    ),
    Fault(
        "OpenAI 401 echoing the key",
        "openai",
        lambda: _openai_error(401, f"Incorrect API key provided: {REQUEST_KEY}", "invalid_request_error",
                              "invalid_api_key"),
        502,
        "upstream_authentication",
        retried=False,
    ),
    Fault("Bedrock ThrottlingException", "bedrock", lambda: bm.error("ThrottlingException", "Slow down"), 429,
          "rate_limited", retry_after=True),
    Fault("Bedrock ModelTimeoutException", "bedrock",
          lambda: bm.error("ModelTimeoutException", "Model has timed out"), 504, "timeout"),
    Fault("Bedrock AccessDeniedException", "bedrock",
          lambda: bm.error("AccessDeniedException", "not authorized to invoke this model"), 502,
          "upstream_authentication", retried=False),
    Fault("Bedrock ServiceUnavailableException", "bedrock",
          lambda: bm.error("ServiceUnavailableException", "unavailable"), 503, "upstream_unavailable",
          retry_after=True),
]  # fmt: skip


@dataclass
class Outcome:
    fault: str
    route: str
    status: int
    kind: str
    seconds: float
    retry_after: str | None
    upstream_calls: int
    next_status: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _openai_answer(body: dict[str, Any]) -> Any:
    """Echo, or a value of the requested JSON schema (structured output), so assessments succeed."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema")
    if fmt.get("type") == "json_schema" and isinstance(schema, dict):
        text = json.dumps(bm.sample_for_schema(schema))
        return om.completion([text] * int(body.get("n") or 1), model=str(body.get("model", "mock")))
    return om.OpenAIMock._default_chat(body)


class FaultRig:
    """Both stand-ins (threads in this process) and the service (gunicorn subprocess)."""

    def __init__(self, deadline: float = 3.0, workers: int = 1) -> None:
        self.deadline = deadline
        self.workers = workers
        self.openai = om.OpenAIMock()
        self.bedrock = bm.BedrockMock()
        self.service: Service | None = None
        code = (DATA / "u3l13_01.js").read_text(encoding="utf-8")
        self.form = {
            "code": code + f'\nvar marker = "{STUDENT_MARKER}";\n',
            "prompt": (DATA / "u3l13.txt").read_text(encoding="utf-8"),
            "rubric": (DATA / "u3l13.csv").read_text(encoding="utf-8"),
            "remove-comments": "1",
            "num-responses": "1",
            "response-type": "tsv",
        }

    def __enter__(self) -> FaultRig:
        self.openai.start()
        self.openai.on(om.CHAT, _openai_answer)
        self.bedrock.start()
        env = {
            "AIPROXY_API_KEY": KEY,
            "OPENAI_API_KEY": OPENAI_KEY,
            "OPENAI_BASE_URL": self.openai.base_url,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.bedrock.endpoint_url,
            "AWS_ACCESS_KEY_ID": "faults-dummy-access-key",
            "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
            "AWS_REGION": "us-east-1",
            "REQUEST_DEADLINE_SECONDS": str(self.deadline),
            "MAX_RETRIES": "3",
            "RETRY_BASE_DELAY_SECONDS": "0.05",
            "RETRY_MAX_DELAY_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        }
        self.service = Service(env, workers=self.workers).start()
        self.warm_up()
        return self

    def warm_up(self) -> None:
        """Healthy calls on every route and upstream, from several threads so each worker gets some.

        A worker imports and builds each provider on its first call; on a loaded machine that alone
        can outlast a short deadline, and the first fault case would measure the import instead."""
        pairs = [(route, model) for route in ROUTES for model in (OPENAI_MODEL, SONNET)]

        def call(route: str, model: str) -> None:
            for _ in range(5):
                if self.request(route, model, "warm-up")[0] == 200:
                    return

        threads = [threading.Thread(target=call, args=pair) for pair in pairs * self.workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def __exit__(self, *exc: object) -> None:
        if self.service is not None:
            self.service.stop()
        self.openai.stop()
        self.bedrock.stop()

    def logs(self) -> str:
        assert self.service is not None
        return self.service.logs()

    # --- one request --------------------------------------------------------------------------
    def request(self, route: str, model: str, text: str = "hello") -> tuple[int, dict[str, str], Any]:
        assert self.service is not None
        if route == "/assessment":
            body = urllib.parse.urlencode({**self.form, "model": model, "api-key": REQUEST_KEY}).encode()
            ctype = "application/x-www-form-urlencoded"
        else:
            body = json.dumps({"model": model, "messages": [{"role": "user", "content": text}]}).encode()
            ctype = "application/json"
        conn = http.client.HTTPConnection("127.0.0.1", self.service.port, timeout=self.deadline + 30)
        try:
            conn.request("POST", route, body=body, headers={"Authorization": KEY, "Content-Type": ctype})
            resp = conn.getresponse()
            raw = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
            try:
                payload: Any = json.loads(raw)
            except ValueError:
                payload = raw.decode(errors="replace")
            return resp.status, headers, payload
        finally:
            conn.close()

    def _upstream_calls(self, fault: Fault) -> int:
        if fault.upstream == "openai":
            return len(self.openai.calls(om.CHAT))
        return len(self.bedrock.calls())

    def run(self, fault: Fault, route: str) -> Outcome:
        model = OPENAI_MODEL if fault.upstream == "openai" else SONNET
        self.openai.clear()
        self.openai.requests.clear()
        self.bedrock.reset()
        if fault.upstream == "openai":
            self.openai.script(om.CHAT, *[fault.make() for _ in range(ATTEMPTS)])
        else:
            self.bedrock.script(bm.CONVERSE, *[fault.make() for _ in range(ATTEMPTS)])
        started = time.monotonic()
        status, headers, body = self.request(route, model)
        seconds = time.monotonic() - started
        calls = self._upstream_calls(fault)
        self.openai.clear()
        self.bedrock.reset()
        next_status, _, next_body = self.request(route, model, "after the fault")

        kind = ""
        if isinstance(body, dict):
            err = body.get("error")
            kind = str(err.get("type")) if isinstance(err, dict) else str(body.get("kind", ""))
        problems = []
        if status != fault.status or kind != fault.kind:
            problems.append(f"answer {status} {kind}, documented {fault.status} {fault.kind}")
        if seconds > self.deadline + SLACK_S:
            problems.append(f"took {seconds:.1f} s, deadline {self.deadline} s")
        if fault.retry_after and not headers.get("retry-after"):
            problems.append("no Retry-After")
        if fault.retried and calls < 2:
            problems.append(f"not retried ({calls} upstream call)")
        if not fault.retried and calls != 1 and fault.status != 504:
            problems.append(f"retried a non-retryable failure ({calls} upstream calls)")
        text = json.dumps(body)
        for secret in (REQUEST_KEY, OPENAI_KEY, KEY, STUDENT_MARKER):
            if secret in text:
                problems.append("the answer echoes a key or the student's code")
        if next_status != 200:
            problems.append(f"next request {next_status}: {str(next_body)[:120]}")
        retry_after = headers.get("retry-after")
        return Outcome(
            fault.name, route, status, kind, round(seconds, 2), retry_after, calls, next_status, problems
        )


def log_problems(logs: str) -> list[str]:
    """Keys and student code must never reach the log (INFO)."""
    found = []
    for name, secret in (
        ("aiproxy key", KEY),
        ("OpenAI key", OPENAI_KEY),
        ("per-request api-key", REQUEST_KEY),
        ("AWS secret", AWS_SECRET),
        ("student code", STUDENT_MARKER),
        ("student code", "createSprite("),
    ):
        if secret in logs:
            found.append(f"{name} in the service log")
    return found


def table(outcomes: list[Outcome]) -> str:
    head = ["fault", "route", "answer", "kind", "s", "Retry-After", "upstream calls", "next", "ok"]
    rows = [
        [
            o.fault,
            o.route,
            str(o.status),
            o.kind,
            f"{o.seconds:.2f}",
            o.retry_after or "-",
            str(o.upstream_calls),
            str(o.next_status),
            "yes" if o.ok else "NO: " + "; ".join(o.problems),
        ]
        for o in outcomes
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deadline", type=float, default=5.0, help="REQUEST_DEADLINE_SECONDS of the service")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the outcomes here")
    args = parser.parse_args()
    outcomes = []
    with FaultRig(deadline=args.deadline, workers=args.workers) as rig:
        for fault in FAULTS:
            for route in ROUTES:
                outcomes.append(rig.run(fault, route))
                print(
                    f"{'ok ' if outcomes[-1].ok else 'BAD'} {fault.name} {route}", file=sys.stderr, flush=True
                )
        leaks = log_problems(rig.logs())
    print(table(outcomes))
    bad = [o for o in outcomes if not o.ok]
    log = "; ".join(leaks) or "clean (no key, no student code)"
    print(f"\n{len(outcomes) - len(bad)}/{len(outcomes)} cases as documented; service log: {log}")
    if args.json:  # atomic: a temp file in the same folder, then rename
        out = Path(args.json)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([asdict(o) for o in outcomes], indent=1) + "\n")
        os.replace(tmp, out)
    return 1 if bad or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
