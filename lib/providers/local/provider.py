"""The embedded ``local`` provider: SmolLM2-135M-Instruct chat and all-MiniLM-L6-v2 embeddings.

- Imports without torch / sentence-transformers / llama.cpp; every call then raises
  ``ProviderNotInstalledError`` ("local provider not installed", HTTP 503).
- Models load lazily on first use, once per process; loading and inference run on OS threads
  (``lib.concurrency.OSThreadRunner``) so a gevent worker keeps answering other requests.
- ``local_max_concurrent`` generations (and, separately, embedding batches) run at once per worker,
  ``local_max_queue`` more wait; beyond that ``CapacityError`` (503 with ``Retry-After``).
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lib.concurrency import BoundedSlots, OSThreadRunner
from lib.errors import (
    AIProxyError,
    InvalidRequestError,
    ProviderNotInstalledError,
    UnknownModelError,
    UpstreamUnavailableError,
)
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    FinishReason,
    JsonSchema,
    ModelInfo,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.local import install
from lib.providers.local.tools import CallParser, ToolPlan, new_call_id, plan_for
from lib.settings import Settings

if TYPE_CHECKING:
    from lib.providers.images import ImageRequest, ImageResult
    from lib.providers.local.chat import Piece, SmolLM2Engine
    from lib.providers.local.embedder import MiniLMEmbedder

#: Model ids reported in results (and routable names themselves).
CHAT_MODEL_ID = "local-smollm2-135m-instruct"
EMBED_MODEL_ID = "local-minilm-l6-v2"
#: Names that select each model. ``local`` means SmolLM2 for chat and MiniLM for embeddings.
CHAT_NAMES = ("local", "local-smollm2", CHAT_MODEL_ID)
EMBED_NAMES = ("local", "local-minilm", EMBED_MODEL_ID)
MAX_CHOICES = 8
#: Inference threads run at this ``nice`` level so the worker's hub thread (health checks, proxied
#: upstream calls) gets the CPU first whenever it has something to do.
INFERENCE_NICE = 10
_GRAMMAR_CACHE_SIZE = 32


def default_threads() -> int:
    """Half the usable cores (at least 1, at most 4): on 2 cores one stays free for the gevent hub."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus // 2))


def _new_lock() -> threading.Lock:
    """``threading.Lock`` looked up at call time: under gevent, the patched (cooperative) lock."""
    return threading.Lock()


@dataclass
class _Runtime:
    """Per-process machinery, created on first call (after gevent's monkey-patching)."""

    chat_slots: BoundedSlots
    embed_slots: BoundedSlots
    chat_runner: OSThreadRunner
    embed_runner: OSThreadRunner
    chat_load_lock: threading.Lock = field(default_factory=_new_lock)
    embed_load_lock: threading.Lock = field(default_factory=_new_lock)
    idle_engines: list[SmolLM2Engine] = field(default_factory=list)
    embedder: MiniLMEmbedder | None = None


class LocalProvider:
    name = "local"

    def __init__(self, settings: Settings, *, offload: bool | None = None) -> None:
        """``offload``: run inference on OS threads (default: exactly when gevent has patched
        ``threading``); ``False`` runs it on the caller's thread (for measurements and tests)."""
        self._offload = offload
        self.max_concurrent = settings.local_max_concurrent
        self.max_queue = settings.local_max_queue
        self.n_threads = settings.local_n_threads or default_threads()
        self.n_ctx = settings.local_chat_context
        self.default_max_tokens = settings.local_default_max_tokens
        self.embed_frozen = settings.local_embed_frozen
        self._rt: _Runtime | None = None
        self._rt_lock = threading.Lock()  # only guards object construction (never held while waiting)
        self._grammars: OrderedDict[str, Any] = OrderedDict()

    # --- machinery ------------------------------------------------------------------------------
    def _runtime(self) -> _Runtime:
        rt = self._rt
        if rt is None:
            with self._rt_lock:
                rt = self._rt
                if rt is None:
                    rt = _Runtime(
                        chat_slots=BoundedSlots(self.max_concurrent, self.max_queue, name="local"),
                        embed_slots=BoundedSlots(self.max_concurrent, self.max_queue, name="local"),
                        chat_runner=OSThreadRunner(
                            self.max_concurrent, force_threads=self._offload, nice=INFERENCE_NICE
                        ),
                        embed_runner=OSThreadRunner(
                            self.max_concurrent, force_threads=self._offload, nice=INFERENCE_NICE
                        ),
                    )
                    self._rt = rt
        return rt

    def _new_engine(self) -> SmolLM2Engine:
        try:
            from lib.providers.local.chat import SmolLM2Engine

            return SmolLM2Engine(
                install.smollm2_gguf_path(),
                n_ctx=self.n_ctx,
                n_threads=self.n_threads,
                n_threads_batch=self.n_threads,
            )
        except ImportError as exc:
            raise ProviderNotInstalledError(f"{install.NOT_INSTALLED} ({exc})", provider="local") from None
        except (OSError, ValueError) as exc:  # llama.cpp refuses the file
            raise UpstreamUnavailableError(
                f"local chat model failed to load: {exc}", provider="local"
            ) from None

    def _checkout(self, rt: _Runtime) -> SmolLM2Engine:
        """An idle engine, or a new one (only ever ``max_concurrent`` exist; a slot is held)."""
        with rt.chat_load_lock:
            if rt.idle_engines:
                return rt.idle_engines.pop()
            return rt.chat_runner.call(self._new_engine)

    def _embedder(self, rt: _Runtime) -> MiniLMEmbedder:
        emb = rt.embedder
        if emb is not None:
            return emb
        with rt.embed_load_lock:
            if rt.embedder is None:
                rt.embedder = rt.embed_runner.call(self._load_embedder)
            return rt.embedder

    def _load_embedder(self) -> MiniLMEmbedder:
        try:
            from lib.providers.local.embedder import MiniLMEmbedder

            return MiniLMEmbedder(
                install.minilm_model_dir(), n_threads=self.n_threads, frozen=self.embed_frozen
            )
        except ImportError as exc:
            raise ProviderNotInstalledError(f"{install.NOT_INSTALLED} ({exc})", provider="local") from None
        except (OSError, ValueError) as exc:
            raise UpstreamUnavailableError(
                f"local embedding model failed to load: {exc}", provider="local"
            ) from None

    def _grammar(self, rt: _Runtime, target: JsonSchema | ToolPlan | None) -> Any:
        """The compiled grammar for a schema or a tool plan (cached). Runs on the caller's thread: the
        conversion is pure Python and quick once llama_cpp is imported, and that import happens on an
        OS thread."""
        if target is None:
            return None
        if "llama_cpp" not in sys.modules:
            rt.chat_runner.call(importlib.import_module, "llama_cpp")
        if isinstance(target, ToolPlan):
            key = "tools:" + target.cache_key
        else:
            key = "schema:" + json.dumps(target.schema, sort_keys=True)
        with self._rt_lock:
            hit = self._grammars.get(key)
            if hit is not None:
                self._grammars.move_to_end(key)
                return hit
        from lib.providers.local.chat import compile_grammar

        grammar = compile_grammar(target)
        with self._rt_lock:
            self._grammars[key] = grammar
            while len(self._grammars) > _GRAMMAR_CACHE_SIZE:
                self._grammars.popitem(last=False)
        return grammar

    # --- validation -----------------------------------------------------------------------------
    def _check_chat(self, request: ChatRequest) -> None:
        if request.model not in CHAT_NAMES:
            if request.model in EMBED_NAMES:
                raise InvalidRequestError(
                    f"{request.model} is an embedding model; use local or local-smollm2 for chat",
                    field="model",
                )
            raise UnknownModelError(
                f"unknown local model {request.model!r}: chat models are {', '.join(CHAT_NAMES)}",
                field="model",
            )
        if not 1 <= request.n <= MAX_CHOICES:
            raise InvalidRequestError(f"n must be between 1 and {MAX_CHOICES} for local models", field="n")
        if request.max_tokens is not None and request.max_tokens < 1:
            raise InvalidRequestError("max_tokens must be at least 1", field="max_tokens")
        if request.temperature is not None and not 0 <= request.temperature <= 2:
            raise InvalidRequestError("temperature must be between 0 and 2", field="temperature")
        if not request.messages:
            raise InvalidRequestError("messages must not be empty", field="messages")
        install.require(install.CHAT_MODULES, "chat")

    def _settings_for(self, request: ChatRequest) -> tuple[float, int, list[str]]:
        from lib.providers.local.chat import DEFAULT_TEMPERATURE

        temperature = DEFAULT_TEMPERATURE if request.temperature is None else float(request.temperature)
        max_tokens = request.max_tokens or self.default_max_tokens
        return temperature, max_tokens, list(request.stop or [])

    # --- Provider protocol ----------------------------------------------------------------------
    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        self._check_chat(request)
        started = time.monotonic()
        rt = self._runtime()
        plan = plan_for(request)
        grammar = self._grammar(rt, plan or request.json_schema)
        with rt.chat_slots.slot(deadline):
            engine = self._checkout(rt)
            try:
                choices, usage = rt.chat_runner.call(self._complete, engine, request, plan, grammar, deadline)
            except Exception:
                rt.idle_engines.append(engine)  # the OS thread is done with it
                raise
            # A BaseException (greenlet killed while waiting) leaves the engine to the OS thread: dropped.
            rt.idle_engines.append(engine)
        return ChatResult(CHAT_MODEL_ID, self.name, choices, usage, time.monotonic() - started)

    def _complete(
        self,
        engine: SmolLM2Engine,
        request: ChatRequest,
        plan: ToolPlan | None,
        grammar: Any,
        deadline: Deadline,
    ) -> tuple[list[Choice], Usage]:
        """Runs on an OS thread: every choice, sequentially, with the same generator as streaming."""
        temperature, max_tokens, stop = self._settings_for(request)
        tokens = _guard(engine.prompt_tokens, request.messages, request.json_schema, plan)
        choices: list[Choice] = []
        completion = first_completion = 0
        for i in range(request.n):
            if i > 0 and temperature == 0.0:  # greedy decoding is deterministic: same answer again
                first = choices[0]
                calls = tuple(replace(c, id=new_call_id()) for c in first.tool_calls)
                choices.append(Choice(i, first.text, first.finish_reason, calls))
                completion += first_completion
                continue
            pieces = engine.generate(
                tokens,
                temperature=temperature,
                max_tokens=max_tokens,
                stop=stop,
                grammar=grammar,
                deadline=deadline,
                **_sampling(request, i),
            )
            choice, used = _assemble(_choice_deltas(_guard_iter(pieces), plan, i))
            choices.append(choice)
            completion += used
            first_completion = first_completion or used
        return choices, Usage(len(tokens), completion)

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        self._check_chat(request)
        return self._stream(request, plan_for(request), deadline)

    def _stream(self, request: ChatRequest, plan: ToolPlan | None, deadline: Deadline) -> Iterator[ChatDelta]:
        rt = self._runtime()
        grammar = self._grammar(rt, plan or request.json_schema)
        with rt.chat_slots.slot(deadline):
            engine = self._checkout(rt)
            reusable = False
            pieces: Iterator[Any] | None = None
            try:
                temperature, max_tokens, stop = self._settings_for(request)
                tokens = rt.chat_runner.call(
                    _guard, engine.prompt_tokens, request.messages, request.json_schema, plan
                )
                completion = 0
                for i in range(request.n):
                    pieces = _guard_iter(
                        engine.generate(
                            tokens,
                            temperature=temperature,
                            max_tokens=max_tokens,
                            stop=stop,
                            grammar=grammar,
                            deadline=deadline,
                            **_sampling(request, i),
                        )
                    )
                    for delta in _choice_deltas(rt.chat_runner.iterate(pieces), plan, i):
                        if delta.finish_reason is None:
                            yield delta
                            continue
                        completion += delta.usage.completion_tokens if delta.usage else 0
                        last = i == request.n - 1
                        yield replace(delta, usage=Usage(len(tokens), completion) if last else None)
                reusable = True
            except (Exception, GeneratorExit):
                # Raised here, not while an OS thread runs the engine: safe to reuse.
                reusable = True
                raise
            finally:
                if reusable:
                    if pieces is not None:  # closes llama's generator too
                        pieces.close()  # type: ignore[attr-defined]
                    rt.idle_engines.append(engine)

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        if request.model not in EMBED_NAMES:
            if request.model in CHAT_NAMES:
                raise InvalidRequestError(
                    f"{request.model} is a chat model; use local or local-minilm for embeddings",
                    field="model",
                )
            raise UnknownModelError(
                f"unknown local model {request.model!r}: embedding models are {', '.join(EMBED_NAMES)}",
                field="model",
            )
        from lib.providers.local.embedder import DIMENSIONS

        if request.dimensions is not None and request.dimensions != DIMENSIONS:
            raise InvalidRequestError(
                f"{EMBED_MODEL_ID} has {DIMENSIONS} dimensions; "
                f"dimensions={request.dimensions} is not supported",
                field="dimensions",
            )
        texts = list(request.texts)
        if not texts:
            raise InvalidRequestError("input must not be empty", field="input")
        install.require(install.EMBED_MODULES, "embeddings")
        started = time.monotonic()
        rt = self._runtime()
        with rt.embed_slots.slot(deadline):
            embedder = self._embedder(rt)
            vectors, tokens = rt.embed_runner.call(_guard, embedder.embed, texts, deadline)
        return EmbedResult(EMBED_MODEL_ID, self.name, vectors, Usage(tokens, 0), time.monotonic() - started)

    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        raise ProviderNotInstalledError(
            "the local provider has no image model installed: use an OpenAI or Bedrock image model",
            provider="local",
        )

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        chat_ok = not install.missing_modules(install.CHAT_MODULES)
        embed_ok = not install.missing_modules(install.EMBED_MODULES)
        if not (chat_ok or embed_ok):
            raise ProviderNotInstalledError(install.NOT_INSTALLED, provider="local")
        names: list[str] = []
        if chat_ok or embed_ok:
            names.append("local")
        if chat_ok:
            names += ["local-smollm2", CHAT_MODEL_ID]
        if embed_ok:
            names += ["local-minilm", EMBED_MODEL_ID]
        return [ModelInfo(n, self.name, owned_by="aiproxy-local") for n in names]


def _choice_deltas(pieces: Iterator[Piece], plan: ToolPlan | None, index: int) -> Iterator[ChatDelta]:
    """One choice's generated pieces as deltas: text, or (with tools offered) the tool call's pieces.
    The last delta has the finish reason (``tool_calls`` once a call is complete) and, in ``usage``,
    this choice's completion tokens. Streaming and non-streaming answers both come from here."""
    parser = CallParser() if plan is not None else None
    for piece in pieces:
        text = piece.text
        calls: tuple[ToolCallDelta, ...] = ()
        if parser is not None:
            out = list(parser.feed(piece.text))
            text = "".join(x for x in out if isinstance(x, str))
            calls = tuple(x for x in out if isinstance(x, ToolCallDelta))
        if piece.finish_reason is None:
            if text or calls:
                yield ChatDelta(index=index, text=text, model=CHAT_MODEL_ID, tool_calls=calls)
            continue
        finish: FinishReason = piece.finish_reason
        if parser is not None and parser.complete:
            finish = "tool_calls"
        usage = Usage(piece.prompt_tokens, piece.completion_tokens)
        yield ChatDelta(index, text, finish, usage, CHAT_MODEL_ID, calls)


def _assemble(deltas: Iterator[ChatDelta]) -> tuple[Choice, int]:
    """The whole choice from its deltas, and its completion tokens."""
    text: list[str] = []
    call_id = name = None
    arguments: list[str] = []
    for d in deltas:
        text.append(d.text)
        for tc in d.tool_calls:
            call_id, name = tc.id or call_id, tc.name or name
            arguments.append(tc.arguments)
        if d.finish_reason is not None:
            calls = (ToolCall(call_id, name, "".join(arguments)),) if call_id and name else ()
            used = d.usage.completion_tokens if d.usage else 0
            return Choice(d.index, "".join(text), d.finish_reason, calls), used
    raise UpstreamUnavailableError("local model ended without a finish reason", provider="local")


def _sampling(request: ChatRequest, choice: int) -> dict[str, Any]:
    """The caller's sampling fields as ``SmolLM2Engine.generate`` arguments (a seed gives choice ``i``
    the seed ``seed + i``, so the ``n`` choices differ but each is reproducible)."""
    from lib.providers.local.chat import TOP_P

    sp = request.sampling
    return {
        "seed": sp.seed + choice if sp.seed is not None else None,
        "top_p": sp.top_p if sp.top_p is not None else TOP_P,
        "presence_penalty": sp.presence_penalty or 0.0,
        "frequency_penalty": sp.frequency_penalty or 0.0,
    }


def _guard(fn: Any, *args: Any) -> Any:
    """Call ``fn``; unexpected library failures become ``UpstreamUnavailableError`` (no traceback leak)."""
    try:
        return fn(*args)
    except AIProxyError:
        raise
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise UpstreamUnavailableError(f"local model failed: {type(exc).__name__}", provider="local") from exc


def _guard_iter(it: Iterator[Any]) -> Iterator[Any]:
    try:
        yield from it
    except AIProxyError:
        raise
    except (RuntimeError, ValueError, OSError, MemoryError) as exc:
        raise UpstreamUnavailableError(f"local model failed: {type(exc).__name__}", provider="local") from exc


def create_local_provider(settings: Settings) -> LocalProvider:
    """What the gateway's ``local`` factory calls. Cheap: loads nothing."""
    return LocalProvider(settings)
