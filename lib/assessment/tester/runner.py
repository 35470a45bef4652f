"""Concurrent assessment of every (lesson, student) with a shared 429 backoff and an answer cache.

One thread pool serves all lessons. Before every assessment a worker waits on the
:class:`SharedBackoff`; a rate limit seen by any worker (a ``RateLimitedError`` escaping the
gateway's own retries, or an upstream 429 the gateway observer reports) pauses *all* workers until
the upstream's ``Retry-After`` (or an exponential delay) has passed. Every successful answer is
written to the cache atomically the moment it arrives; errors are recorded, never cached.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from lib.assessment.tester.cache import AnswerCache
from lib.assessment.tester.estimate import cost_usd
from lib.assessment.types import LABELS, AssessmentRequest, AssessmentResult
from lib.errors import AIProxyError, RateLimitedError

if TYPE_CHECKING:
    from lib.providers.gateway import UpstreamCall

log = logging.getLogger(__name__)
Assess = Callable[[AssessmentRequest], AssessmentResult]


class SharedBackoff:
    """A pause shared by all workers. Thread-safe; ``clock``/``sleep`` injectable for tests."""

    def __init__(
        self,
        *,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._strikes = 0
        self.rate_limits = 0
        self.waited_s = 0.0

    def remaining(self) -> float:
        with self._lock:
            return max(0.0, self._resume_at - self._clock())

    def wait(self) -> float:
        """Block while a backoff is in force; returns the seconds waited."""
        waited = 0.0
        while True:
            remaining = self.remaining()
            if remaining <= 0:
                if waited:
                    with self._lock:
                        self.waited_s += waited
                return waited
            self._sleep(remaining)
            waited += remaining

    def penalize(self, retry_after: float | None = None) -> float:
        """A 429 was seen: pause everyone for ``retry_after`` or ``base * 2**strikes`` (capped)."""
        with self._lock:
            self._strikes += 1
            self.rate_limits += 1
            if retry_after is not None and retry_after >= 0:
                delay = min(float(retry_after), self.max_delay)
            else:
                delay = min(self.max_delay, self.base_delay * 2 ** (self._strikes - 1))
            self._resume_at = max(self._resume_at, self._clock() + delay)
            return delay

    def success(self) -> None:
        with self._lock:
            self._strikes = 0


class BackoffObserver:
    """Gateway observer: every upstream ``rate_limited`` attempt pauses all workers."""

    def __init__(self, limiter: SharedBackoff, inner: Any = None) -> None:
        self.limiter = limiter
        self.inner = inner

    def observe_upstream(self, call: UpstreamCall) -> None:
        if call.error_kind == "rate_limited":
            self.limiter.penalize(None)
        if self.inner is not None:
            self.inner.observe_upstream(call)


@dataclass(frozen=True)
class Job:
    lesson: str
    student_id: str
    request: AssessmentRequest
    fingerprint: str
    cache: AnswerCache
    key_concepts: tuple[str, ...]


@dataclass
class Outcome:
    lesson: str
    student_id: str
    fingerprint: str
    result: AssessmentResult | None = None
    error_kind: str | None = None
    error_message: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.result is not None


@dataclass
class RunTotals:
    done: int = 0
    cached: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_models: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def check_answer(result: AssessmentResult, key_concepts: Sequence[str]) -> str | None:
    """None when the answer has every key concept exactly once with a valid label."""
    seen: dict[str, str] = {}
    for row in result.data:
        if not isinstance(row, dict):
            return "answer row is not an object"
        kc = str(row.get("Key Concept", "")).strip()
        if kc in seen:
            return f"key concept {kc!r} answered twice"
        seen[kc] = str(row.get("Label", ""))
    missing = [kc for kc in key_concepts if kc not in seen]
    if missing:
        return "answer lacks key concept(s): " + "; ".join(missing)
    bad = [f"{kc}={label!r}" for kc, label in seen.items() if kc in key_concepts and label not in LABELS]
    if bad:
        return "invalid label(s): " + "; ".join(bad)
    return None


def usage_of(result: AssessmentResult) -> tuple[int, int]:
    usage = result.metadata.get("usage") or {}
    try:
        return int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    except (TypeError, ValueError):
        return 0, 0


class Runner:
    def __init__(
        self,
        assess: Assess,
        *,
        workers: int,
        use_cached: bool,
        limiter: SharedBackoff | None = None,
        max_rate_limit_retries: int = 6,
        progress: bool = True,
        progress_file: TextIO | None = None,
    ) -> None:
        self.assess = assess
        self.workers = max(1, workers)
        self.use_cached = use_cached
        self.limiter = limiter or SharedBackoff()
        self.max_rate_limit_retries = max_rate_limit_retries
        self.progress = progress
        self.progress_file = progress_file
        self.totals = RunTotals()

    def _account(self, result: AssessmentResult, cached: bool) -> None:
        if cached:
            return
        prompt, completion = usage_of(result)
        model = str(result.metadata.get("model") or "")
        with self.totals.lock:
            self.totals.prompt_tokens += prompt
            self.totals.completion_tokens += completion
            cost = cost_usd(model, prompt, completion) if model else None
            if cost is None:
                if prompt or completion:
                    self.totals.unpriced_models.add(model or "?")
            else:
                self.totals.cost_usd += cost

    def run_one(self, job: Job) -> Outcome:
        out = Outcome(job.lesson, job.student_id, job.fingerprint)
        if self.use_cached:
            hit = job.cache.get(job.student_id, job.fingerprint)
            if hit is not None and check_answer(hit[0], job.key_concepts) is None:
                out.result, out.latency_s, out.cached = hit[0], hit[1], True
                return out
        for attempt in range(self.max_rate_limit_retries + 1):
            self.limiter.wait()
            out.attempts = attempt + 1
            started = time.monotonic()
            try:
                result = self.assess(job.request)
            except RateLimitedError as exc:
                self.limiter.penalize(exc.retry_after)
                out.error_kind, out.error_message = exc.kind, str(exc)
                continue
            except AIProxyError as exc:
                out.error_kind, out.error_message = exc.kind, str(exc)
                return out
            except Exception as exc:
                log.exception("assessment of %s/%s crashed", job.lesson, job.student_id)
                out.error_kind, out.error_message = "internal_error", f"{type(exc).__name__}: {exc}"
                return out
            out.latency_s = time.monotonic() - started
            self.limiter.success()
            problem = check_answer(result, job.key_concepts)
            if problem is not None:
                out.error_kind, out.error_message = "invalid_model_answer", problem
                self._account(result, cached=False)
                return out
            out.result, out.error_kind, out.error_message = result, None, None
            job.cache.put(job.lesson, job.student_id, job.fingerprint, result, out.latency_s)
            self._account(result, cached=False)
            return out
        return out  # rate limited on every attempt

    def run(self, jobs: Sequence[Job]) -> list[Outcome]:
        from tqdm import tqdm

        outcomes: list[Outcome | None] = [None] * len(jobs)
        bar = tqdm(
            total=len(jobs),
            file=self.progress_file or sys.stderr,
            # None: tqdm switches itself off when the stream is not a terminal (no bar spam in logs/CI)
            disable=None if self.progress else True,
            unit="student",
            dynamic_ncols=True,
            smoothing=0.1,
        )
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="rubric-tester")
        try:
            futures = {pool.submit(self.run_one, job): i for i, job in enumerate(jobs)}
            for fut in as_completed(futures):
                outcome = fut.result()
                outcomes[futures[fut]] = outcome
                t = self.totals
                with t.lock:
                    t.done += 1
                    t.cached += outcome.cached
                    t.errors += not outcome.ok
                    postfix = {
                        "tokens": f"{t.total_tokens:,}",
                        "cost": f"${t.cost_usd:.4f}",
                        "cached": t.cached,
                        "errors": t.errors,
                    }
                if self.limiter.remaining() > 0:
                    postfix["backoff"] = f"{self.limiter.remaining():.1f}s"
                bar.set_postfix(postfix, refresh=False)
                bar.update(1)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            bar.close()
        pool.shutdown(wait=True)
        return [o for o in outcomes if o is not None]
