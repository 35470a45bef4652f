"""The provider interface: what OpenAI, Bedrock and the embedded local model all implement.

A provider knows nothing about HTTP, routing, retries or metrics; it turns one typed request into one
upstream call and one typed result, and translates every upstream failure into ``lib.errors``.
``lib.providers.gateway.Gateway`` adds routing by model name, deadlines, retries and fallbacks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from lib.providers.deadline import Deadline

if TYPE_CHECKING:
    from lib.providers.images import ImageRequest, ImageResult

Role = Literal["system", "user", "assistant", "tool"]
#: Normalised to OpenAI's vocabulary: Bedrock ``max_tokens`` -> ``length``, ``end_turn`` -> ``stop``.
FinishReason = Literal["stop", "length", "content_filter", "tool_calls"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An inline image (decoded from a ``data:`` URL; the service never fetches a URL)."""

    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: bytes = field(repr=False)
    detail: str | None = None  # OpenAI's "auto" | "low" | "high"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the assistant asked for; ``arguments`` is JSON text (as OpenAI sends it)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The caller's answer to one ``ToolCall`` (an OpenAI ``role: "tool"`` message)."""

    tool_call_id: str
    content: str


ContentPart = TextPart | ImagePart | ToolCall | ToolResult


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. ``content`` is plain text or typed parts: text and images (user), text and tool calls
    (assistant), tool results (tool)."""

    role: Role
    content: str | tuple[ContentPart, ...]

    @property
    def parts(self) -> tuple[ContentPart, ...]:
        if isinstance(self.content, str):
            return (TextPart(self.content),) if self.content else ()
        return self.content

    @property
    def text(self) -> str:
        """The text parts joined (tool results and images left out)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return tuple(p for p in self.parts if isinstance(p, ToolCall))

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call: ``parameters`` is its arguments' JSON schema (an object)."""

    name: str
    parameters: dict[str, Any]
    description: str = ""
    strict: bool | None = None


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` (model decides), ``none`` (no call), ``required`` (some call) or ``function`` (``name``)."""

    mode: Literal["auto", "none", "required", "function"]
    name: str = ""


@dataclass(frozen=True, slots=True)
class Sampling:
    """Sampling fields beyond temperature. A provider that cannot honour a set field refuses it
    (``lib.providers.capabilities``); none is silently dropped."""

    top_p: float | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None  # token id (as text, OpenAI's JSON form) -> bias
    user: str | None = None
    logprobs: bool = False
    top_logprobs: int | None = None

    def set_fields(self) -> list[str]:
        """Names of the fields the caller set (``logprobs`` only when true)."""
        out = [
            name
            for name in ("top_p", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "user")
            if getattr(self, name) is not None
        ]
        if self.logprobs:
            out.append("logprobs")
        if self.top_logprobs is not None:
            out.append("top_logprobs")
        return out


@dataclass(frozen=True, slots=True)
class JsonSchema:
    """A JSON schema the answer must satisfy (OpenAI structured output, Claude tool use, grammar)."""

    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat call as the provider sees it. ``model`` is the provider's own model id."""

    model: str
    messages: Sequence[Message]
    temperature: float | None = None
    max_tokens: int | None = None
    n: int = 1
    json_schema: JsonSchema | None = None
    stop: Sequence[str] | None = None
    tools: Sequence[Tool] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    sampling: Sampling = Sampling()
    #: Per-request upstream credential (the web app's ``api-key``). Used for this call only.
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Images generated (image routes): most image models are billed per image, not per token.
    images: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.images + other.images,
        )

    def as_dict(self) -> dict[str, int]:
        out = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.images:
            out["images"] = self.images
        return out


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    token: str
    logprob: float
    bytes: tuple[int, ...] | None = None
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class Choice:
    index: int
    text: str
    finish_reason: FinishReason | None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: tuple[TokenLogprob, ...] | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call. ``index`` is the call's stable position within its choice;
    ``id`` and ``name`` come with the first piece of a call, ``arguments`` text accumulates."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(frozen=True, slots=True)
class ChatResult:
    model: str  # the model id that answered (as the upstream reports it)
    provider: str
    choices: list[Choice]
    usage: Usage
    latency_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ChatDelta:
    """One streamed piece. The last delta of a stream carries ``usage`` (and finish reasons)."""

    index: int = 0
    text: str = ""
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    #: The model id that answers, when the provider knows it (as ``ChatResult.model``).
    model: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class EmbedRequest:
    model: str
    texts: Sequence[str]
    api_key: str | None = field(default=None, repr=False)
    dimensions: int | None = None
    #: The caller's input as token arrays (OpenAI's form), one per text; ``texts`` then holds them
    #: decoded. A provider that reads token ids (OpenAI) sends these; the others embed ``texts``.
    token_ids: Sequence[Sequence[int]] | None = None


@dataclass(frozen=True, slots=True)
class EmbedResult:
    model: str
    provider: str
    vectors: list[list[float]]
    usage: Usage
    latency_s: float = 0.0

    @property
    def dimensions(self) -> int:
        return len(self.vectors[0]) if self.vectors else 0


@dataclass(frozen=True, slots=True)
class ModelInfo:
    id: str  # the routable name clients send, e.g. ``gpt-4o`` or ``bedrock.us.anthropic...``
    provider: str
    owned_by: str = ""


@runtime_checkable
class Provider(Protocol):
    """Every provider implements exactly this.

    Implementations must raise only ``lib.errors.AIProxyError`` subclasses for upstream trouble and
    must give up when ``deadline`` expires (pass ``deadline.timeout()`` to the client as its timeout).
    Providers do not retry: the gateway does, uniformly.
    """

    name: str

    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult: ...

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Iterator[ChatDelta]:
        """Yield deltas; the final one carries ``usage``. Errors before the first delta are retryable."""
        ...

    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult: ...

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]: ...

    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        """Images for one prompt (``lib.providers.images``); the gateway has checked the request
        against the model's ``ImageModel``. Providers without image models raise
        ``InvalidRequestError`` or ``ProviderNotInstalledError``."""
        ...
