"""SageMaker runtime failures in the one taxonomy (``lib.errors``).

SageMaker's own codes are decided here; everything else (throttling, credentials, transport, parser
failures) is what the Bedrock translation already knows about AWS, reused with SageMaker's name:

- ``ModelError`` (HTTP 424: the container answered an error) -> 413 ``context_too_long`` when the
  container says the input is too long, 400 ``invalid_request`` when it refused the request (its
  ``OriginalStatusCode`` is 4xx: a parameter it does not take), 429 when it is busy, else 502
  ``invalid_upstream_response``;
- ``ValidationError`` "Endpoint ... not found" / "Inference Component ... not found" -> 400
  ``unknown_model`` naming the model; other ``ValidationError`` -> 400 ``invalid_request``;
- ``ThrottlingException`` -> 429 ``rate_limited``; ``ServiceUnavailable``, ``InternalFailure``,
  ``InternalDependencyException``, ``ModelNotReadyException`` -> 503 ``upstream_unavailable``;
- inside a response stream ``ModelStreamError`` -> 502, ``InternalStreamFailure`` -> 503.

Messages name the endpoint and the code; upstream text is shortened with quoted parts removed (it may
echo the prompt).
"""

from __future__ import annotations

import re
from typing import Any

from botocore import exceptions as bce

from lib.errors import (
    AIProxyError,
    ContextTooLongError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    RateLimitedError,
    UnknownModelError,
    UpstreamUnavailableError,
)
from lib.providers.bedrock.errors import safe_upstream_message
from lib.providers.bedrock.errors import translate as translate_aws

PROVIDER = "sagemaker"
TITLE = "SageMaker"

_NOT_FOUND = re.compile(r"(endpoint|inference component)\b.*\bnot found", re.IGNORECASE | re.DOTALL)
_TOO_LONG = re.compile(
    r"max_new_tokens.{0,10} must be <=|must have less than \d+ (input )?tokens|too long"
    r"|maximum context length|exceeds? .{0,30}(context|tokens)|longer than the (model|maximum)",
    re.IGNORECASE,
)
_UNAVAILABLE = {
    "internalfailure",
    "internaldependencyexception",
    "internalstreamfailure",
    "serviceunavailable",
}


def translate(exc: BaseException, model: str) -> AIProxyError:
    """Map anything boto3 raised for endpoint ``model`` (``endpoint[.component]``) to ``lib.errors``."""
    if isinstance(exc, bce.ClientError):
        response: dict[str, Any] = exc.response or {}
        error = response.get("Error") or {}
        code = str(error.get("Code") or "")
        message = str(error.get("Message") or "")
        original = str(error.get("OriginalMessage") or response.get("OriginalMessage") or "")
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        kw: dict[str, Any] = {
            "provider": PROVIDER,
            "model": model,
            "upstream_status": status if isinstance(status, int) else None,
        }
        key = code.lower()
        if key == "validationerror" and _NOT_FOUND.search(message):
            return UnknownModelError(
                f"SageMaker endpoint sagemaker.{model} was not found (no such endpoint or inference "
                "component in this account and region)",
                field="model",
                **kw,
            )
        if key in ("modelerror", "modelstreamerror"):
            detail = safe_upstream_message(original or message)
            if _TOO_LONG.search(original or message):
                return ContextTooLongError(
                    f"SageMaker {code}: the input is too long for endpoint {model}: {detail}", **kw
                )
            container = response.get("OriginalStatusCode")
            if container == 429:
                return RateLimitedError(f"SageMaker {code}: the container of endpoint {model} is busy", **kw)
            if isinstance(container, int) and 400 <= container < 500:
                return InvalidRequestError(
                    f"SageMaker {code}: the model container of endpoint {model} refused the request "
                    f"(HTTP {container}): {detail}",
                    **kw,
                )
            return InvalidUpstreamResponseError(
                f"SageMaker {code}: the model container of endpoint {model} failed"
                + (f": {detail}" if detail else ""),
                **kw,
            )
        if key in _UNAVAILABLE:
            return UpstreamUnavailableError(f"SageMaker {code}: endpoint {model} is unavailable", **kw)
    return translate_aws(exc, model, provider=PROVIDER, title=TITLE)
