"""The one error taxonomy of aiproxy.

Every provider (OpenAI, Bedrock, local) and every domain module (assessment, dance weights, rubric
tester) raises these and only these for expected failures.  Each class has a stable ``kind`` string;
the HTTP layer (``src/errors.py``) maps kinds to statuses in one table, and the CLIs print them.

Messages must never contain an API key or student code.
"""

from __future__ import annotations


class AIProxyError(Exception):
    """Base class. ``kind`` is the machine-readable name clients and metrics see."""

    kind = "error"
    #: True when a retry of the same upstream call may succeed (used by the retry loop).
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        retry_after: float | None = None,
        upstream_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.retry_after = retry_after
        self.upstream_status = upstream_status

    def __str__(self) -> str:
        return self.message


# --- the caller's fault ------------------------------------------------------------------------


class InvalidRequestError(AIProxyError):
    """The request cannot be served as sent (bad field, bad value). Never retried."""

    kind = "invalid_request"

    def __init__(self, message: str, *, field: str | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.field = field


class UnknownModelError(InvalidRequestError):
    """The model name routes to no provider (or an alias points nowhere)."""

    kind = "unknown_model"


class ContextTooLongError(AIProxyError):
    """The input is longer than the model's context window."""

    kind = "context_too_long"


class ContentPolicyError(AIProxyError):
    """The provider's safety filter refused the prompt (or every image it made). The message carries
    the provider's reason; never retried: the same prompt is refused again."""

    kind = "content_policy"


class OutputTruncatedError(AIProxyError):
    """The answer was cut off by the token limit (finish reason ``length``)."""

    kind = "output_truncated"


# --- upstream trouble --------------------------------------------------------------------------


class AuthenticationError(AIProxyError):
    """The upstream rejected our (or the per-request) credentials, or denied access to the model."""

    kind = "upstream_authentication"


class RateLimitedError(AIProxyError):
    """The upstream throttled us. ``retry_after`` (seconds) when the upstream said."""

    kind = "rate_limited"
    retryable = True


class UpstreamUnavailableError(AIProxyError):
    """5xx, connection refused/reset, or the provider is overloaded."""

    kind = "upstream_unavailable"
    retryable = True


class UpstreamTimeoutError(AIProxyError):
    """The upstream did not answer in time, or the request deadline passed."""

    kind = "timeout"
    retryable = True


class InvalidUpstreamResponseError(AIProxyError):
    """The upstream answered something we cannot use (truncated, non-JSON, wrong shape)."""

    kind = "invalid_upstream_response"
    retryable = True


class InvalidModelAnswerError(AIProxyError):
    """The model's answer stayed unusable after the repair attempt (assessment)."""

    kind = "invalid_model_answer"


class ProviderNotInstalledError(AIProxyError):
    """The provider's optional dependencies are not installed in this image."""

    kind = "provider_not_installed"


class CapacityError(AIProxyError):
    """This worker's bounded queue for a provider is full. ``retry_after`` is set."""

    kind = "capacity"


class QuotaExceededError(AIProxyError):
    """This caller (key or token ``sub``) is over its own RPM, TPM or concurrency limit, or is a
    batch-class caller backing off while the upstream throttles. Distinct from ``rate_limited``
    (the upstream's own throttling): clients retry both, after ``retry_after`` seconds."""

    kind = "quota"

    def __init__(self, message: str, *, limit: str, retry_after: float, **kw: object) -> None:
        super().__init__(message, retry_after=retry_after, **kw)  # type: ignore[arg-type]
        #: which limit refused: ``rpm``, ``tpm``, ``concurrency`` or ``batch_backoff``.
        self.limit = limit


class ForbiddenError(AIProxyError):
    """The caller's key is valid but lacks what this request needs (a scope, a model on its
    allow-list). The message names what is missing; never retried."""

    kind = "forbidden"


class BudgetExceededError(AIProxyError):
    """The caller's key has spent its monthly budget (from the usage ledger). Distinct from ``quota``
    and ``rate_limited``: retrying will not help before the next month or a budget raise."""

    kind = "budget_exceeded"
