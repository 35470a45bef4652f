"""Per-request deadlines: one absolute point in (monotonic) time that every upstream call respects.

A per-read timeout is not a deadline: an upstream that sends one byte every second satisfies any read
timeout of more than a second for as long as it likes.  The request's ``Deadline`` bounds the whole
upstream exchange (connect, send, every read of the answer, every retry and backoff sleep), and
when it passes the caller gets ``UpstreamTimeoutError`` (HTTP 504 ``timeout``; an in-band error event
when a stream has already started).

How each client is held to it (design):

- **OpenAI** (official ``openai`` SDK over ``httpx2``/``httpcore2``): the SDK's client runs on
  ``lib.providers.openai.transport.DeadlineTransport``, whose network streams *re-arm the socket
  timeout to the time left* before every connect, read and write: ``min(the SDK's timeout,
  deadline remaining)``, and raise the matching ``httpcore2`` timeout at once when nothing is left.
  The provider binds the request's deadline to the calling thread or greenlet (``bind``, a
  ``ContextVar``) around each SDK call and before each read of a stream.  The cost is one context
  variable lookup and one ``time.monotonic()`` per socket operation, no thread, no timer, no
  greenlet; it works the same under the gevent worker (gevent's sockets honour ``settimeout``, and
  each greenlet has its own context) and in plain threads (the CLIs).
  Rejected: ``gevent.Timeout`` around the call (gevent only; the CLIs use plain threads, and a
  stream's reads happen outside any one ``with`` block), and a timer that closes the connection at
  the deadline (a timer per call costs a thread or a hub callback, and closing a socket another
  thread is blocked on does not wake it on Linux).
- **Bedrock** (``boto3``/``botocore`` over ``urllib3``, which offer no per-call timeout and no hook
  into their socket reads): every call runs on the provider's pool while the caller waits at most
  ``remaining()``; at the deadline the caller gets ``UpstreamTimeoutError`` and a stream being read is
  shut down (see ``lib.providers.bedrock.provider``).  Under gevent the pool runs each call in
  ``call_bounded``, a ``gevent.Timeout`` just after the deadline, so the abandoned call itself stops
  reading and drops its connection too (a hub timer, a few microseconds a call).  In plain threads nothing can
  interrupt a blocked read from outside: an abandoned non-streaming call runs until its answer is
  complete or one read exceeds the client's read timeout (the caller has long had its answer).
- **Retries** (``lib.providers.gateway``): no backoff sleep ends past the deadline; a ``Retry-After``
  longer than the time left ends the request at once with the upstream's error (429
  ``rate_limited`` with its ``Retry-After``), rather than sleeping into a 504.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

from lib.errors import UpstreamTimeoutError

T = TypeVar("T")


class Deadline:
    __slots__ = ("expires_at", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.expires_at

    def timeout(self, cap: float | None = None) -> float:
        """Seconds an upstream call may take now; raises when nothing is left."""
        left = self.remaining()
        if left <= 0.0:
            raise UpstreamTimeoutError(f"request deadline of {self.seconds:g} s passed")
        return min(left, cap) if cap is not None else left

    def check(self) -> None:
        self.timeout()

    def clamp(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to the time left; ``None`` (the caller should give up now) when
        nothing is left.  Used before every socket operation of a deadline-aware transport."""
        left = self.expires_at - time.monotonic()
        if left <= 0.0:
            return None
        return left if timeout is None or left < timeout else timeout


#: The deadline of the upstream call the current thread (or greenlet) is making, if any. Set by a
#: provider around its client calls (``bind``), read by its transport before each socket operation.
UPSTREAM_DEADLINE: ContextVar[Deadline | None] = ContextVar("aiproxy_upstream_deadline", default=None)
bind = UPSTREAM_DEADLINE.set
unbind = UPSTREAM_DEADLINE.reset
current = UPSTREAM_DEADLINE.get


#: ``call_bounded`` interrupts this long after the deadline: the caller waiting for the call has
#: answered by then (with its own, more specific error); the interruption only stops abandoned work.
ABANDON_GRACE_SECONDS = 0.1


def call_bounded(fn: Callable[[], T], deadline: Deadline) -> T:
    """``fn()`` run on a worker for a caller that waits at most until ``deadline``; under gevent
    monkey-patching it is interrupted where it blocks just after the deadline (``UpstreamTimeoutError``).
    Without gevent it is just ``fn()``: a thread blocked in a read cannot be interrupted from outside."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("socket"):
        return fn()
    import gevent

    left = deadline.expires_at + ABANDON_GRACE_SECONDS - time.monotonic()
    if left <= 0.0:
        raise UpstreamTimeoutError(f"request deadline of {deadline.seconds:g} s passed")
    # gevent.Timeout is a BaseException: no library's ``except Exception`` retries or wraps it.
    timer = gevent.Timeout(left)
    timer.start()
    try:
        return fn()
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        raise UpstreamTimeoutError(f"request deadline of {deadline.seconds:g} s passed") from None
    finally:
        timer.close()
