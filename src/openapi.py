"""Build the OpenAPI 3.1 document from the routes' ``@documented`` metadata and pydantic models."""

from __future__ import annotations

from typing import Any

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from src.api import ApiDoc
from src.errors import STATUS_BY_KIND
from src.schemas import ErrorBody, OpenAIErrorBody

_STATUS_TEXT = {
    200: "OK",
    400: "Invalid request (the body names the field)",
    401: "Missing or invalid aiproxy key",
    403: "The key lacks a scope or a model this request needs (the message names it)",
    404: "Not found",
    413: "Request body too large, or input too long for the model / answer cut off by the token limit",
    429: "Upstream rate limit after retries (Retry-After set)",
    502: "Upstream rejected our credentials or sent an unusable answer",
    503: "Upstream unavailable, provider not installed, or local queue full (Retry-After set)",
    504: "Request deadline passed",
}


#: One server-sent event (OpenAPI 3.1 has no stream keyword: ``schema`` describes each event, the
#: way OpenAPI 3.2's ``itemSchema`` does): the data line is a JSON chunk, an in-band error or ``[DONE]``.
_SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "description": "A chat.completion.chunk as JSON (or, on /v1/responses, a Responses event named "
            'by the event line), {"error": {...}} if the upstream fails mid-stream, or [DONE].',
        },
        "event": {"type": "string"},
    },
}


def _kinds_for(status: int) -> str:
    kinds = sorted(k for k, s in STATUS_BY_KIND.items() if s == status)
    return f" Kinds: {', '.join(kinds)}." if kinds else ""


def build_openapi(app: Flask) -> dict[str, Any]:
    ops: list[tuple[str, str, ApiDoc, bool]] = []
    models: set[type[BaseModel]] = {ErrorBody, OpenAIErrorBody}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static":
            continue
        view = app.view_functions[rule.endpoint]
        doc: ApiDoc | None = getattr(view, "_aiproxy_doc", None)
        if doc is None:
            continue
        auth = bool(getattr(view, "_aiproxy_auth", False))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            ops.append((rule.rule, method.lower(), doc, auth))
        if doc.body is not None:
            models.add(doc.body)
        models.update(r for r in doc.responses.values() if isinstance(r, type))

    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = defs.get("$defs", {})

    paths: dict[str, dict[str, Any]] = {}
    for path, method, doc, auth in ops:
        error_model = "OpenAIErrorBody" if path.startswith("/v1/") else "ErrorBody"
        responses: dict[str, Any] = {}
        for status, target in sorted(doc.responses.items()):
            responses[str(status)] = _response(status, target, doc.stream)
        statuses = set(doc.errors)
        if doc.body is not None:
            statuses |= {400, 413}
        if auth:
            statuses.add(401)
        for status in sorted(statuses):
            responses[str(status)] = {
                "description": _STATUS_TEXT.get(status, "Error") + _kinds_for(status),
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{error_model}"}}},
            }
        op: dict[str, Any] = {
            "operationId": f"{method}_{path.strip('/').replace('/', '_') or 'root'}",
            "summary": doc.summary,
            "tags": list(doc.tags),
            "responses": responses,
        }
        if doc.description:
            op["description"] = doc.description
        if auth:
            op["security"] = [{"rawKey": []}, {"bearerKey": []}]
        if doc.query is not None:
            op["parameters"] = _query_parameters(doc.query)
        if doc.body is not None:
            ref = {"$ref": f"#/components/schemas/{doc.body.__name__}"}
            content: dict[str, Any] = {"application/json": {"schema": ref}}
            if doc.form:
                content["application/x-www-form-urlencoded"] = {"schema": ref}
                content["multipart/form-data"] = {"schema": ref}
            op["requestBody"] = {"required": True, "content": content}
        paths.setdefault(path, {})[method] = op

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "aiproxy",
            "version": "1.0.0",
            "description": "LLM proxy for Code.org: AI rubric assessment, chat and embeddings over OpenAI, "
            "AWS Bedrock and an embedded local model. See API.md for the full contract.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "rawKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "The aiproxy key as the raw header value (the web app).",
                },
                "bearerKey": {"type": "http", "scheme": "bearer", "description": "Bearer <aiproxy key>."},
            },
        },
    }


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(by_alias=True)
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "description": prop.get("description", ""),
            "schema": _non_null(prop),
        }
        for name, prop in schema.get("properties", {}).items()
    ]


def _non_null(prop: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a value: drop pydantic's ``null`` branch and the default."""
    options = [o for o in prop.get("anyOf", []) if o.get("type") != "null"]
    if len(options) == 1:
        return options[0]
    return {k: v for k, v in prop.items() if k not in ("description", "title", "default")}


def _response(status: int, target: type[BaseModel] | str, stream: bool) -> dict[str, Any]:
    if isinstance(target, str):
        mime, _, text = target.partition(":")
        mime = mime.strip()
        if not text:
            text = _STATUS_TEXT.get(status, "OK")
        schema: dict[str, Any] = {"type": "string"} if not mime.endswith("json") else {"type": "object"}
        return {"description": text.strip(), "content": {mime: {"schema": schema}}}
    content: dict[str, Any] = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{target.__name__}"}}
    }
    if stream:
        content["text/event-stream"] = {"schema": _SSE_EVENT}
    return {"description": _STATUS_TEXT.get(status, "OK"), "content": content}
