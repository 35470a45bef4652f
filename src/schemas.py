"""Request and response models of the HTTP API. They validate bodies and generate ``/openapi.json``."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from src.limits import (
    MAX_CONTENT_CHARS,
    MAX_EMBED_INPUT_TOKENS,
    MAX_EMBED_INPUTS,
    MAX_MESSAGES,
    MAX_STOP_SEQUENCES,
    check_json_schema,
)


def _not_bool(v: Any) -> Any:
    """pydantic's lax mode reads JSON ``true`` as 1; the documented type is a number."""
    if isinstance(v, bool):
        raise ValueError("must be a number, not true/false")
    return v


#: Numbers as documented: JSON numbers (or numeric text from a form post), never true/false.
Int = Annotated[int, BeforeValidator(_not_bool)]
Num = Annotated[float, BeforeValidator(_not_bool)]
#: A metadata value a retrieval filter compares with.
RetrievalScalar = str | int | float | bool | None


def check_embed_inputs(v: str | list[str]) -> str | list[str]:
    if isinstance(v, list):
        if not v:
            raise ValueError("must not be empty")
        if len(v) > MAX_EMBED_INPUTS:
            raise ValueError(f"at most {MAX_EMBED_INPUTS} texts")
    return v


class ErrorBody(BaseModel):
    error: str = Field(description="What went wrong, naming the field or the upstream problem.")
    kind: str = Field(description="Machine-readable error kind (see API.md).")
    field: str | None = None
    request_id: str | None = None


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail
    request_id: str | None = None


class UsageOut(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


# --- native routes -----------------------------------------------------------------------------


class NativeToolCall(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field("{}", max_length=MAX_CONTENT_CHARS, description="JSON text.")


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field("", max_length=MAX_CONTENT_CHARS)
    tool_calls: list[NativeToolCall] | None = Field(
        None, max_length=128, description="Assistant turns: the calls the model made."
    )
    tool_call_id: str | None = Field(None, max_length=256, description="Tool turns: the call answered.")


class RetrievalIn(BaseModel):
    """Grounded chat (an aiproxy extension on /chat and /v1/chat/completions); see API.md."""

    model_config = ConfigDict(extra="forbid")
    collection: str = Field(min_length=1, max_length=100, description="The collection to search.")
    k: Int = Field(4, ge=1, le=20, description="How many chunks go into the context block.")
    filter: dict[str, RetrievalScalar | list[RetrievalScalar]] | None = Field(
        None, description="Document metadata that must match: `{field: value}` or `{field: [values]}`."
    )


class CitationOut(BaseModel):
    index: int = Field(description="The passage's `[n]` in the context block the model saw.")
    document_id: str
    chunk: int
    start: int = Field(description="Character offset in the document (inclusive).")
    end: int = Field(description="Character offset (exclusive).")
    score: float


class ChatBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="Routable model name; default from settings.")
    messages: list[MessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: Num | None = Field(None, ge=0, le=2)
    max_tokens: Int | None = Field(None, ge=1, le=128_000)
    n: Int = Field(1, ge=1, le=8, description="Number of choices.")
    json_schema: dict[str, Any] | None = Field(
        None, description="Ask for JSON matching this JSON schema (structured output); root type object."
    )
    tools: list[OAIFunction] | None = Field(
        None, max_length=128, description="Functions the model may call: name, description, parameters."
    )
    tool_choice: Literal["auto", "none", "required"] | str | None = Field(
        None, description="auto, none, required, or the name of one of the tools."
    )
    retrieval: RetrievalIn | None = Field(None, description="Ground the answer in a collection (extension).")

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else check_json_schema(v)


class ChoiceOut(BaseModel):
    index: int
    text: str
    finish_reason: str | None
    tool_calls: list[NativeToolCall] | None = None


class ChatOut(BaseModel):
    model: str
    provider: str
    reply: str = Field(description="Text of the first choice.")
    choices: list[ChoiceOut]
    usage: UsageOut
    latency_ms: float
    citations: list[CitationOut] | None = Field(None, description="With `retrieval`: the passages given.")


class EmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = None
    input: str | list[str] = Field(description="One text or a list of texts.")
    dimensions: Int | None = Field(None, ge=1, le=8192)

    @field_validator("input")
    @classmethod
    def _inputs(cls, v: str | list[str]) -> str | list[str]:
        return check_embed_inputs(v)


class EmbeddingOut(BaseModel):
    index: int
    embedding: list[float]


class EmbeddingsOut(BaseModel):
    model: str
    provider: str
    data: list[EmbeddingOut]
    dimensions: int
    usage: UsageOut


# --- OpenAI-compatible routes ----------------------------------------------------------------


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str = Field(description="A data: URL (base64 PNG/JPEG/GIF/WebP); http(s) URLs are refused.")
    detail: Literal["auto", "low", "high"] | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "image_url"]
    text: str | None = Field(None, max_length=MAX_CONTENT_CHARS)
    image_url: ImageURL | None = None


class OAIFunctionCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field("", max_length=MAX_CONTENT_CHARS)


class OAIToolCall(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str = Field(min_length=1, max_length=256)
    type: Literal["function"] = "function"
    function: OAIFunctionCall


class OAIMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None
    tool_calls: list[OAIToolCall] | None = Field(None, max_length=128)
    tool_call_id: str | None = Field(None, max_length=256)

    @field_validator("content")
    @classmethod
    def _content_size(cls, v: str | list[ContentPart] | None) -> str | list[ContentPart] | None:
        size = len(v) if isinstance(v, str) else sum(len(p.text or "") for p in v or ())
        if size > MAX_CONTENT_CHARS:
            raise ValueError(f"at most {MAX_CONTENT_CHARS} characters (all text parts together), got {size}")
        return v

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content if part.type == "text")


class OAIFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="1-64 letters, digits, _ or -.")
    description: str | None = Field(None, max_length=10_000)
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="The arguments' JSON schema (an object schema).",
    )
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_json_schema(v)


class OAITool(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: OAIFunction


class OAINamedFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64)


class OAIToolChoiceFunction(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["function"]
    function: OAINamedFunction


class JsonSchemaFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = Field("response", max_length=64)
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    description: str | None = None
    strict: bool | None = Field(None, strict=True)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_json_schema(v)


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = Field(False, strict=True)


class ChatCompletionBody(BaseModel):
    """The subset of OpenAI's request that aiproxy honours; other OpenAI fields are accepted and ignored."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[OAIMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    temperature: Num | None = Field(None, ge=0, le=2)
    max_tokens: Int | None = Field(None, ge=1, le=128_000)
    max_completion_tokens: Int | None = Field(None, ge=1, le=128_000)
    n: Int = Field(1, ge=1, le=8)
    stream: bool = Field(False, strict=True)
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = Field(None, description=f"A string or up to {MAX_STOP_SEQUENCES} strings.")
    response_format: ResponseFormat | None = None
    tools: list[OAITool] | None = Field(None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | OAIToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = Field(None, strict=True)
    top_p: Num | None = Field(None, ge=0, le=1)
    seed: Int | None = None
    presence_penalty: Num | None = Field(None, ge=-2, le=2)
    frequency_penalty: Num | None = Field(None, ge=-2, le=2)
    logit_bias: dict[str, Num] | None = Field(None, description="Token id -> bias (-100..100).")
    user: str | None = Field(None, max_length=256)
    logprobs: bool | None = Field(None, strict=True)
    top_logprobs: Int | None = Field(None, ge=0, le=20)
    json_schema: Any = Field(
        None, description="Not an OpenAI field (it is /chat's): refused with 400, send `response_format`."
    )
    retrieval: RetrievalIn | None = Field(
        None, description="aiproxy extension: ground the answer in a collection (see API.md)."
    )

    @field_validator("stop")
    @classmethod
    def _stop(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(v) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        return v

    @field_validator("json_schema")
    @classmethod
    def _no_native_schema(cls, v: Any) -> None:
        if v is not None:
            raise ValueError(
                "is /chat's field; on /v1 send "
                'response_format: {"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}'
            )


class OAIChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[OAIToolCall] | None = None


class OAIChoice(BaseModel):
    index: int
    message: OAIChoiceMessage
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None


class ChatCompletionOut(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[OAIChoice]
    usage: UsageOut
    citations: list[CitationOut] | None = Field(None, description="With `retrieval` (aiproxy extension).")


#: A token id as OpenAI's token-array input sends it: a JSON integer (not true/false, not 1.0), >= 0.
TokenId = Annotated[int, Field(strict=True, ge=0)]


class OAIEmbeddingsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    input: str | list[str] | list[TokenId] | list[list[TokenId]] = Field(
        description=(
            f"A text, up to {MAX_EMBED_INPUTS} texts, one token array or up to {MAX_EMBED_INPUTS} token "
            f"arrays (cl100k_base ids, 1-{MAX_EMBED_INPUT_TOKENS} each)."
        )
    )
    dimensions: Int | None = Field(None, ge=1, le=8192)
    encoding_format: Literal["float", "base64"] | None = Field(
        None, description="float (default) or base64 (little-endian float32, as the openai SDK asks)."
    )

    @field_validator("input", mode="wrap")
    @classmethod
    def _one_message(cls, v: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One message naming ``input`` instead of one per member of the union."""
        try:
            return handler(v)
        except ValidationError as exc:
            if any(e["type"] == "value_error" for e in exc.errors()):
                raise  # our own check below: its message is already precise
            raise ValueError(
                "must be a string, a list of strings, a list of token ids (integers >= 0) "
                "or a list of such lists"
            ) from None

    @field_validator("input")
    @classmethod
    def _inputs(
        cls, v: str | list[str] | list[int] | list[list[int]]
    ) -> str | list[str] | list[int] | list[list[int]]:
        if isinstance(v, list) and v and isinstance(v[0], int):  # one token array
            return _token_array(v)
        if isinstance(v, list) and v and isinstance(v[0], list):
            check_embed_inputs([""] * len(v))
            return [_token_array(a) for a in v]
        return check_embed_inputs(cast(str | list[str], v))

    def token_arrays(self) -> list[list[int]] | None:
        """The input as token arrays (one per embedding), or ``None`` when it is text."""
        v = self.input
        if isinstance(v, str) or not v or isinstance(v[0], str):
            return None
        return [v] if isinstance(v[0], int) else v

    def texts(self) -> list[str]:
        """The input as texts (when it is not token arrays)."""
        return [self.input] if isinstance(self.input, str) else cast(list[str], self.input)


def _token_array(ids: list[int]) -> list[int]:
    if not 1 <= len(ids) <= MAX_EMBED_INPUT_TOKENS:
        raise ValueError(f"a token array holds 1 to {MAX_EMBED_INPUT_TOKENS} token ids, got {len(ids)}")
    return ids


class OAIEmbedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="Floats, or base64 float32 with encoding_format=base64.")


class OAIEmbedUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class OAIEmbeddingsOut(BaseModel):
    object: Literal["list"] = "list"
    model: str
    data: list[OAIEmbedding]
    usage: OAIEmbedUsage


class OAIModel(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str


class OAIModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[OAIModel]
