"""OpenAI through the official ``openai`` SDK (chat, streaming, embeddings, model list).

One SDK client per provider instance (one per worker process), with SDK retries off (the gateway
retries) and a connection pool sized by ``UPSTREAM_POOL_SIZE``.  A per-request key (the web app's
``api-key`` form field) is sent as that request's ``Authorization`` header only; it is never stored.
``OPENAI_BASE_URL`` (settings or environment) points the SDK elsewhere, e.g. at a loopback mock.
The SDK's HTTP client runs on ``DeadlineTransport``: every socket operation of a call is bounded by the
request's deadline (bound around each SDK call and before each read of a stream), so an upstream that
trickles its answer ends at the deadline (``lib.providers.deadline``).
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx2
import openai

from lib.errors import (
    AIProxyError,
    AuthenticationError,
    ContextTooLongError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
    RateLimitedError,
    UpstreamTimeoutError,
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
    ImagePart,
    Message,
    ModelInfo,
    TextPart,
    TokenLogprob,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolResult,
    TopLogprob,
    Usage,
)
from lib.providers.deadline import Deadline, bind, unbind
from lib.providers.images import ImageRequest, ImageResult
from lib.providers.openai.transport import DeadlineTransport
from lib.settings import Settings

if TYPE_CHECKING:
    from openai._types import RequestOptions

T = TypeVar("T")
NAME = "openai"
_PLACEHOLDER_KEY = "no-key-configured"
# The SDK's X-Stainless-* platform headers describe this server (OS, CPU, Python version) to the
# upstream. They serve nothing here, so every call omits them (which also saves about 50 us a call).
# The SDK's per-call X-Stainless-Retry-Count and X-Stainless-Read-Timeout are still sent. Read-only:
# it is shared by every call.
NO_PLATFORM_HEADERS: Mapping[str, str | openai.Omit] = MappingProxyType(
    {
        name: openai.Omit()
        for name in (
            "X-Stainless-Lang",
            "X-Stainless-Package-Version",
            "X-Stainless-OS",
            "X-Stainless-Arch",
            "X-Stainless-Runtime",
            "X-Stainless-Runtime-Version",
            "X-Stainless-Async",
        )
    }
)
_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
}


def _retry_after(headers: httpx2.Headers | None) -> float | None:
    if headers is None:
        return None
    for name in ("retry-after-ms", "retry-after"):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value)
        except ValueError:
            continue
        return seconds / 1000.0 if name.endswith("ms") else seconds
    return None


def _error_code(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    code = err.get("code") if isinstance(err, dict) else None
    return str(code or "")


def translate(exc: Exception, model: str) -> AIProxyError:
    """Map an SDK exception to the aiproxy taxonomy (no prompt text, no key in the message)."""
    kw: dict[str, Any] = {"provider": NAME, "model": model}
    if isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException):
        return UpstreamTimeoutError("OpenAI did not answer in time", **kw)
    if isinstance(exc, openai.APIConnectionError):
        return UpstreamUnavailableError("could not reach OpenAI (connection failed)", **kw)
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        code = _error_code(exc)
        kw["upstream_status"] = status
        if status == 429:
            if code == "insufficient_quota":
                return AuthenticationError("OpenAI refused: the account's quota is exhausted", **kw)
            return RateLimitedError(
                "OpenAI rate limit reached", retry_after=_retry_after(exc.response.headers), **kw
            )
        if status in (401, 403):
            return AuthenticationError(f"OpenAI rejected the credentials (HTTP {status})", **kw)
        if code == "context_length_exceeded" or "maximum context length" in str(exc.message).lower():
            return ContextTooLongError("the input is longer than the model's context window", **kw)
        if status == 404:
            return InvalidRequestError(f"OpenAI does not know model {model!r}", field="model", **kw)
        if status in (400, 409, 413, 422):
            return InvalidRequestError(f"OpenAI rejected the request: {_safe_message(exc)}", **kw)
        if status >= 500:
            return UpstreamUnavailableError(f"OpenAI is unavailable (HTTP {status})", **kw)
        return InvalidUpstreamResponseError(f"unexpected HTTP {status} from OpenAI", **kw)
    if isinstance(exc, openai.APIResponseValidationError | ValueError | KeyError | TypeError):
        return InvalidUpstreamResponseError("OpenAI sent a response we could not read", **kw)
    if isinstance(exc, openai.OpenAIError):
        return InvalidUpstreamResponseError(f"OpenAI client error: {type(exc).__name__}", **kw)
    if isinstance(exc, httpx2.HTTPError):
        return UpstreamUnavailableError(f"OpenAI transport error: {type(exc).__name__}", **kw)
    raise exc


def _safe_message(exc: openai.APIStatusError) -> str:
    """OpenAI's own error text, shortened (it names parameters, not prompt content)."""
    body = exc.body if isinstance(exc.body, dict) else {}
    err = body.get("error", body) if isinstance(body, dict) else {}
    message = err.get("message") if isinstance(err, dict) else None
    text = str(message or exc.message or "bad request")
    return text[:300]


def _tokens(value: object) -> int:
    """A token count, or 0 when the upstream sent none or nonsense: usage is accounting data, and a
    paid-for answer is never thrown away (and bought again by a retry) over it."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and math.isfinite(value):
        return max(0, int(value))
    return 0


def _usage(raw: object, completion_key: str | None) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    completion = _tokens(raw.get(completion_key)) if completion_key else 0
    return Usage(_tokens(raw.get("prompt_tokens")), completion)


def _wire_messages(msg: Message) -> list[dict[str, Any]]:
    """One aiproxy message as OpenAI messages (a tool turn with several results becomes several)."""
    if isinstance(msg.content, str):
        return [{"role": msg.role, "content": msg.content}]
    if msg.role == "tool":
        return [
            {"role": "tool", "tool_call_id": p.tool_call_id, "content": p.content}
            for p in msg.content
            if isinstance(p, ToolResult)
        ]
    out: dict[str, Any] = {"role": msg.role}
    if msg.images:
        content: list[dict[str, Any]] = []
        for p in msg.content:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                url = f"data:{p.media_type};base64,{base64.b64encode(p.data).decode('ascii')}"
                image: dict[str, Any] = {"url": url}
                if p.detail:
                    image["detail"] = p.detail
                content.append({"type": "image_url", "image_url": image})
        out["content"] = content
    else:
        out["content"] = msg.text or None
    calls = msg.tool_calls
    if calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ]
    return [out]


def _wire_tool(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        fn["description"] = tool.description
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return {"type": "function", "function": fn}


def _logprobs(raw: object) -> tuple[TokenLogprob, ...] | None:
    if not isinstance(raw, dict):
        return None
    items = raw.get("content")
    if not isinstance(items, list):
        return None

    def _bytes(v: object) -> tuple[int, ...] | None:
        return tuple(int(b) for b in v) if isinstance(v, list) else None

    return tuple(
        TokenLogprob(
            str(t["token"]),
            float(t["logprob"]),
            _bytes(t.get("bytes")),
            tuple(
                TopLogprob(str(x["token"]), float(x["logprob"]), _bytes(x.get("bytes")))
                for x in t.get("top_logprobs") or ()
            ),
        )
        for t in items
    )


def _choice(raw: dict[str, Any], position: int) -> Choice:
    message = raw["message"]
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("message content is not a string")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None and not (
        isinstance(tool_calls, list) and all(isinstance(tc, dict) for tc in tool_calls)
    ):
        raise ValueError("tool_calls is not a list of objects")
    calls = tuple(
        ToolCall(str(tc["id"]), str(tc["function"]["name"]), str(tc["function"].get("arguments") or ""))
        for tc in tool_calls or ()
    )
    index = raw.get("index")
    finish = raw.get("finish_reason")
    return Choice(
        index=index if isinstance(index, int) and not isinstance(index, bool) else position,
        text=content or "",
        finish_reason=_FINISH.get(str(finish), "stop") if finish else None,
        tool_calls=calls,
        logprobs=_logprobs(raw.get("logprobs")),
    )


def _vector(raw: object) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise ValueError("embedding is not a non-empty list")
    out: list[float] = []
    for x in raw:
        if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
            raise ValueError("embedding holds a value that is not a finite number")
        out.append(float(x))
    return out


def _vectors(items: object, count: int) -> list[list[float]]:
    """The vectors in input order; the upstream's indices must be exactly 0..count-1."""
    if not isinstance(items, list):
        raise ValueError("data is not a list")
    by_index: dict[int, list[float]] = {}
    for item in items:
        index = item["index"]
        if isinstance(index, bool) or not isinstance(index, int) or index in by_index:
            raise ValueError("embedding index missing, not an integer, or repeated")
        by_index[index] = _vector(item["embedding"])
    if sorted(by_index) != list(range(count)):
        raise ValueError("embedding count or indices do not match the input")
    return [by_index[i] for i in range(count)]


class OpenAIProvider:
    name = NAME

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        self._has_key = bool(key)
        limits = httpx2.Limits(
            max_connections=settings.upstream_pool_size,
            max_keepalive_connections=min(64, settings.upstream_pool_size),
        )
        timeout = httpx2.Timeout(
            settings.request_deadline_seconds, connect=settings.upstream_connect_timeout_seconds
        )
        self.client = openai.OpenAI(
            api_key=key or _PLACEHOLDER_KEY,
            base_url=settings.openai_base_url or None,
            organization=settings.openai_organization,
            max_retries=0,
            timeout=timeout,
            http_client=openai.DefaultHttpxClient(
                limits=limits, timeout=timeout, transport=DeadlineTransport(limits=limits)
            ),
        )
        # Absolute URLs: the SDK then skips re-deriving them from base_url on every call.
        self._urls = {path: f"{self.client.base_url}{path}" for path in ("chat/completions", "embeddings")}
        # The SDK builds its platform headers on the first call (then caches them), running
        # `uname -p` in a subprocess, which yields under gevent: every call that arrived meanwhile
        # started its own, so a cold worker forked once per waiting call (300 concurrent first
        # streams took 36 s instead of 8). Built here, once, while the gateway holds its lock.
        self.client.platform_headers()

    # --- helpers --------------------------------------------------------------------------------
    def _headers(self, api_key: str | None) -> Mapping[str, str | openai.Omit]:
        """Headers for one call: a per-request key, if any, as that call's Authorization."""
        if api_key:
            if not (api_key.isascii() and api_key.isprintable()) or any(c.isspace() for c in api_key):
                # A key that cannot be an HTTP header value is the caller's mistake, not an outage.
                raise InvalidRequestError(
                    "api-key must be printable ASCII without spaces", field="api-key", provider=NAME
                )
            return {**NO_PLATFORM_HEADERS, "Authorization": f"Bearer {api_key}"}
        if not self._has_key:
            raise AuthenticationError(
                "no OpenAI API key: set OPENAI_API_KEY or send api-key with the request", provider=NAME
            )
        return NO_PLATFORM_HEADERS

    @staticmethod
    def _options(headers: Mapping[str, str | openai.Omit], deadline: Deadline) -> RequestOptions:
        """Options for the SDK's generic ``post`` (its documented way to send a body we built
        ourselves): skips re-transforming our already-plain params, about 0.3 ms a call."""
        return {"timeout": deadline.timeout(), "security": {"bearer_auth": True}, "headers": headers}

    def _call(self, model: str, fn: Callable[[], T], deadline: Deadline) -> T:
        token = bind(deadline)  # DeadlineTransport bounds every socket operation of fn by it
        try:
            return fn()
        except AIProxyError:
            raise
        except Exception as exc:
            raise translate(exc, model) from exc
        finally:
            unbind(token)

    @staticmethod
    def _chat_params(req: ChatRequest) -> dict[str, Any]:
        params: dict[str, Any] = {
            "model": req.model,
            "messages": [m for msg in req.messages for m in _wire_messages(msg)],
        }
        if req.tools:
            params["tools"] = [_wire_tool(t) for t in req.tools]
        if req.tool_choice is not None:
            tc = req.tool_choice
            params["tool_choice"] = (
                {"type": "function", "function": {"name": tc.name}} if tc.mode == "function" else tc.mode
            )
        if req.parallel_tool_calls is not None and req.tools:
            params["parallel_tool_calls"] = req.parallel_tool_calls
        sp = req.sampling
        for name in ("top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "user"):
            value = getattr(sp, name)
            if value is not None:
                params[name] = value
        if sp.logprobs:
            params["logprobs"] = True
            if sp.top_logprobs is not None:
                params["top_logprobs"] = sp.top_logprobs
        if req.temperature is not None:
            params["temperature"] = req.temperature
        if req.max_tokens is not None:
            params["max_completion_tokens"] = req.max_tokens
        if req.n != 1:
            params["n"] = req.n
        if req.stop:
            params["stop"] = list(req.stop)
        if req.json_schema is not None:
            params["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": req.json_schema.name,
                    "schema": req.json_schema.schema,
                    "strict": False,
                    **({"description": req.json_schema.description} if req.json_schema.description else {}),
                },
            }
        return params

    # --- Provider interface ---------------------------------------------------------------------
    def _post(
        self,
        path: str,
        body: dict[str, Any],
        headers: Mapping[str, str | openai.Omit],
        deadline: Deadline,
        model: str,
    ) -> dict[str, Any]:
        """POST through the SDK and return the decoded JSON object.

        ``cast_to=httpx2.Response`` is the SDK's documented form for a call whose answer we read
        ourselves: the SDK still builds the request, authenticates, and turns every non-2xx answer and
        transport failure into its typed errors; it only skips building its pydantic models, which we
        would immediately convert into ours (about 0.2 ms a call)."""
        response = self._call(
            model,
            lambda: self.client.post(
                self._urls[path], cast_to=httpx2.Response, body=body, options=self._options(headers, deadline)
            ),
            deadline,
        )
        try:
            data = response.json()
        except ValueError as exc:
            raise InvalidUpstreamResponseError(
                "OpenAI sent a response that is not JSON", provider=NAME, model=model
            ) from exc
        if not isinstance(data, dict):
            raise InvalidUpstreamResponseError(
                "OpenAI sent a response that is not a JSON object", provider=NAME, model=model
            )
        return data

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        headers = self._headers(request.api_key)
        started = time.monotonic()
        data = self._post("chat/completions", self._chat_params(request), headers, deadline, request.model)
        try:
            choices = [_choice(c, i) for i, c in enumerate(data["choices"])]
            if not choices:
                raise ValueError("no choices")
            return ChatResult(
                model=str(data.get("model") or request.model),
                provider=NAME,
                choices=choices,
                usage=_usage(data.get("usage"), "completion_tokens"),
                latency_s=time.monotonic() - started,
            )
        except (LookupError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidUpstreamResponseError(
                "OpenAI sent a chat completion we could not read", provider=NAME, model=request.model
            ) from exc

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        headers = self._headers(request.api_key)
        params = self._chat_params(request)
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
        stream = self._call(
            request.model,
            lambda: self.client.chat.completions.create(
                **params, extra_headers=headers, timeout=deadline.timeout()
            ),
            deadline,
        )
        return self._iterate(stream, request.model, deadline)

    def _iterate(self, stream: Any, model: str, deadline: Deadline) -> Iterator[ChatDelta]:
        finished = False
        chunks = iter(stream)
        try:
            while True:
                # Bound before every read: the consumer may resume this generator in another context.
                bind(deadline)
                chunk = next(chunks, None)
                if chunk is None:
                    break
                if chunk.usage is not None and not chunk.choices:
                    yield ChatDelta(usage=Usage(chunk.usage.prompt_tokens, chunk.usage.completion_tokens))
                    continue
                for c in chunk.choices:
                    text = (c.delta.content or "") if c.delta else ""
                    finish = _FINISH.get(str(c.finish_reason), "stop") if c.finish_reason else None
                    finished = finished or finish is not None
                    calls = tuple(
                        ToolCallDelta(
                            tc.index,
                            tc.id,
                            tc.function.name if tc.function else None,
                            (tc.function.arguments or "") if tc.function else "",
                        )
                        for tc in ((c.delta.tool_calls or ()) if c.delta else ())
                    )
                    lp = _logprobs(c.logprobs.model_dump()) if c.logprobs is not None else None
                    if text or finish or calls or lp:
                        yield ChatDelta(
                            index=c.index,
                            text=text,
                            finish_reason=finish,
                            model=chunk.model,
                            tool_calls=calls,
                            logprobs=lp or (),
                        )
        except AIProxyError:
            raise
        except Exception as exc:
            raise translate(exc, model) from exc
        finally:
            bind(None)
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        if not finished:  # e.g. bytes that are not SSE after the first chunk, then the end
            raise InvalidUpstreamResponseError(
                "OpenAI stream ended before the answer finished", provider=NAME, model=model
            )

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        headers = self._headers(request.api_key)
        started = time.monotonic()
        body: dict[str, Any] = {
            "model": request.model,
            "input": [list(t) for t in request.token_ids] if request.token_ids else list(request.texts),
            "encoding_format": "float",
        }
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        data = self._post("embeddings", body, headers, deadline, request.model)
        try:
            vectors = _vectors(data["data"], len(request.texts))
            return EmbedResult(
                model=str(data.get("model") or request.model),
                provider=NAME,
                vectors=vectors,
                usage=_usage(data.get("usage"), None),
                latency_s=time.monotonic() - started,
            )
        except (LookupError, AttributeError, TypeError, ValueError) as exc:
            raise InvalidUpstreamResponseError(
                "OpenAI sent embeddings we could not read", provider=NAME, model=request.model
            ) from exc

    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        """``images.generate`` (see ``lib.providers.openai.images``)."""
        from lib.providers.openai import images

        return images.generate(self, request, deadline)

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        headers = self._headers(api_key)
        page = self._call(
            "models",
            lambda: self.client.models.list(extra_headers=headers, timeout=deadline.timeout()),
            deadline,
        )
        return [ModelInfo(id=m.id, provider=NAME, owned_by=m.owned_by or "openai") for m in page.data]
