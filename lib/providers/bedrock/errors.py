"""Translate every botocore failure into ``lib.errors`` (the one taxonomy).

Error codes come from the HTTP ``x-amzn-ErrorType`` header / ``__type`` body (``ThrottlingException``)
or, inside a Converse stream, from the ``:exception-type`` event header (``throttlingException``), so
codes are compared case-insensitively.  Messages name the model and the upstream code; they never carry
prompt text or credentials (upstream validation messages are shortened and have quoted parts removed).
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Mapping
from typing import Any

from botocore import exceptions as bce
from botocore.eventstream import ParserError as EventStreamParserError
from botocore.parsers import ResponseParserError

from lib.errors import (
    AIProxyError,
    AuthenticationError,
    ContextTooLongError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    RateLimitedError,
    UnknownModelError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

PROVIDER = "bedrock"

_THROTTLED = {"throttlingexception", "toomanyrequestsexception", "servicequotaexceededexception"}
_UNAVAILABLE = {
    "serviceunavailableexception",
    "serviceunavailable",
    "internalserverexception",
    "internalfailure",
    "modelnotreadyexception",
    "modelerrorexception",
    "modelstreamerrorexception",
}
_TIMEOUT = {"modeltimeoutexception", "requesttimeout", "requesttimeoutexception"}
_AUTH = {
    "accessdeniedexception",
    "unrecognizedclientexception",
    "expiredtoken",
    "expiredtokenexception",
    "invalidsignatureexception",
    "incompletesignature",
    "invalidclienttokenid",
    "missingauthenticationtoken",
    "missingauthenticationtokenexception",
    "signaturedoesnotmatch",
    "unauthorizedexception",
}
_NOT_FOUND = {"resourcenotfoundexception"}
_VALIDATION = {"validationexception", "serializationexception"}

#: Phrases Bedrock models use when the prompt exceeds the context window.
_TOO_LONG = re.compile(
    r"input is too long|prompt is too long|too many (input )?tokens|maximum context length"
    r"|context (window|length) (of|exceeded|limit)|exceeds? the (model'?s? )?(context|maximum input)"
    r"|input (token|length).{0,40}exceed",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|`[^`]*`")
_MAX_UPSTREAM_MESSAGE = 200


def retry_after_seconds(headers: Mapping[str, Any] | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), if the upstream sent one."""
    if not headers:
        return None
    lowered = {str(k).lower(): v for k, v in headers.items()}
    for name in ("retry-after-ms", "x-amzn-retry-after-ms", "retry-after", "x-amzn-retry-after"):
        value = lowered.get(name)
        if value is None:
            continue
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(text)
            except (TypeError, ValueError):
                continue
            seconds = when.timestamp() - time.time()
        else:
            if name.endswith("-ms"):
                seconds /= 1000.0
        return max(0.0, seconds)
    return None


def safe_upstream_message(message: str) -> str:
    """An upstream message fit for a client: quoted parts removed (they may echo input), shortened."""
    text = _QUOTED.sub("'…'", " ".join(message.split()))
    if len(text) > _MAX_UPSTREAM_MESSAGE:
        text = text[: _MAX_UPSTREAM_MESSAGE - 1] + "…"
    return text


def translate_client_error(
    exc: bce.ClientError, model: str, *, provider: str = PROVIDER, title: str = "Bedrock"
) -> AIProxyError:
    """An AWS error answer in the taxonomy; ``provider``/``title`` name the service (shared with
    SageMaker, whose own codes are mapped first in ``lib.providers.sagemaker.errors``)."""
    response: Mapping[str, Any] = exc.response or {}
    error = response.get("Error") or {}
    meta = response.get("ResponseMetadata") or {}
    code = str(error.get("Code") or "")
    message = str(error.get("Message") or "")
    status_raw = meta.get("HTTPStatusCode")
    status = int(status_raw) if isinstance(status_raw, int) else None
    headers = meta.get("HTTPHeaders") or {}
    key = "" if code.isdigit() else code.lower()  # botocore uses the status as code when none was sent
    kw: dict[str, Any] = {"provider": provider, "model": model, "upstream_status": status}
    label = f"{title} {code or 'error'}" + (f" (HTTP {status})" if status else "")

    if key in _THROTTLED or (not key and status == 429):
        return RateLimitedError(
            f"{label}: model {model} is rate limited", retry_after=retry_after_seconds(headers), **kw
        )
    if key in _TIMEOUT or (key not in _VALIDATION and status == 408):
        return UpstreamTimeoutError(f"{label}: model {model} timed out", **kw)
    if key in _UNAVAILABLE:
        return UpstreamUnavailableError(
            f"{label}: model {model} is unavailable", retry_after=retry_after_seconds(headers), **kw
        )
    if key in _AUTH or (not key and status in (401, 403)):
        return AuthenticationError(f"{label}: access to model {model} was denied", **kw)
    if key in _NOT_FOUND or (not key and status == 404):
        return UnknownModelError(
            f"{title} model {model!r} was not found (unknown id, not enabled for this account, "
            "or not offered in this region)",
            field="model",
            **kw,
        )
    if _TOO_LONG.search(message) and (key in _VALIDATION or status in (400, 413) or not key):
        return ContextTooLongError(f"{label}: the input is too long for model {model}", **kw)
    if key in _VALIDATION or (status is not None and 400 <= status < 500 and status != 429):
        detail = safe_upstream_message(message)
        return InvalidRequestError(
            f"{label}: model {model} rejected the request" + (f": {detail}" if detail else ""), **kw
        )
    # 5xx, unknown codes: the upstream's trouble, worth a retry
    return UpstreamUnavailableError(
        f"{label}: model {model} failed", retry_after=retry_after_seconds(headers), **kw
    )


def translate(
    exc: BaseException, model: str, *, provider: str = PROVIDER, title: str = "Bedrock"
) -> AIProxyError:
    """Map any exception raised by boto3/botocore (or by reading its response) to ``lib.errors``."""
    kw: dict[str, Any] = {"provider": provider, "model": model}
    if isinstance(exc, AIProxyError):
        return exc
    if isinstance(exc, bce.ClientError):  # includes EventStreamError (errors inside a stream)
        return translate_client_error(exc, model, provider=provider, title=title)
    if isinstance(exc, bce.ReadTimeoutError):
        return UpstreamTimeoutError(f"{title} did not answer in time for model {model}", **kw)
    if isinstance(exc, bce.ConnectTimeoutError):
        return UpstreamUnavailableError(f"could not connect to {title} for model {model} (timeout)", **kw)
    if isinstance(
        exc,
        bce.NoCredentialsError
        | bce.PartialCredentialsError
        | bce.CredentialRetrievalError
        | bce.NoAuthTokenError
        | bce.TokenRetrievalError
        | bce.SSOError
        | bce.UnauthorizedSSOTokenError
        | bce.ProfileNotFound
        | bce.UnknownCredentialError
        | bce.RefreshWithMFAUnsupportedError,
    ):
        return AuthenticationError(
            f"AWS credentials for {title} are missing or unusable ({type(exc).__name__})", **kw
        )
    if isinstance(exc, bce.ParamValidationError):
        return InvalidRequestError(f"invalid {title} request for model {model}", **kw)
    if isinstance(exc, ResponseParserError):
        return InvalidUpstreamResponseError(f"{title} sent an unparseable response for model {model}", **kw)
    if isinstance(exc, EventStreamParserError):  # bad CRC, lengths or headers inside a stream
        return InvalidUpstreamResponseError(f"{title} sent an unreadable stream for model {model}", **kw)
    if isinstance(exc, bce.NoRegionError | bce.InvalidRegionError | bce.UnknownEndpointError):
        return UpstreamUnavailableError(f"{title} endpoint is misconfigured ({type(exc).__name__})", **kw)
    if isinstance(exc, bce.BotoCoreError):  # connection refused/reset/closed, SSL, proxy, incomplete read
        return UpstreamUnavailableError(
            f"could not reach {title} for model {model} ({type(exc).__name__})", **kw
        )
    if isinstance(exc, KeyError | TypeError | ValueError | IndexError | AttributeError):
        return InvalidUpstreamResponseError(f"{title} answered an unexpected shape for model {model}", **kw)
    if isinstance(exc, OSError):
        return UpstreamUnavailableError(
            f"could not reach {title} for model {model} ({type(exc).__name__})", **kw
        )
    return UpstreamUnavailableError(f"{title} call for model {model} failed ({type(exc).__name__})", **kw)
