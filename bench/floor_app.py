"""The floor under the proxy benchmark: a feature-free Flask app that forwards a chat completion
through the official openai SDK exactly as ``lib/providers/openai`` does (same call, same
``cast_to``, same omitted headers), with no auth, validation, routing, deadline, retries, metrics or
logging.  ``bench/proxy_bench.py --only floor`` serves it with the service's gunicorn config, so the
difference between its added latency and the service's is what aiproxy's own features cost.
Not part of the service."""

from __future__ import annotations

import json
import os

import httpx2
import openai
from flask import Flask, Response, request

from lib.providers.openai.provider import NO_PLATFORM_HEADERS

app = Flask(__name__)
_client = openai.OpenAI(api_key="sk-floor", base_url=os.environ["OPENAI_BASE_URL"], max_retries=0)
_url = f"{_client.base_url}chat/completions"


@app.get("/")
def health() -> str:
    return "Success."


@app.post("/v1/chat/completions")
def chat() -> Response:
    body = json.loads(request.get_data())
    answer = _client.post(
        _url,
        cast_to=httpx2.Response,
        body=body,
        options={"timeout": 60.0, "security": {"bearer_auth": True}, "headers": NO_PLATFORM_HEADERS},
    ).json()
    out = {k: answer[k] for k in ("id", "object", "created", "model", "choices", "usage")}
    return Response(json.dumps(out), mimetype="application/json")
