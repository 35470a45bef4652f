"""Request and response models of ``POST /v1/responses`` (OpenAI's Responses API).

They validate the body (every limit of ``src/limits.py`` applies, as on ``/v1/chat/completions``) and
generate the route's part of ``/openapi.json``. The body is strict: a field this service does not know
is a 400 naming it, and a Responses field it knows but cannot honour (server-side state, hosted tools,
reasoning settings...) is a 400 saying why, unless it is sent as ``null`` or its no-op value. The
translation to the providers' chat call is ``src/responses_dialect.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from src.limits import MAX_CONTENT_CHARS, MAX_MESSAGES, check_json_schema
from src.schemas import Int, Num

#: Echo fields of items the service itself returned (``output`` items sent back in ``input``).
_ITEM_STATUS = Literal["in_progress", "completed", "incomplete"]


class InputText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["input_text"]
    text: str = Field(max_length=MAX_CONTENT_CHARS)


class InputImage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["input_image"]
    image_url: str | None = Field(
        None, description="A data: URL (base64 PNG/JPEG/GIF/WebP); http(s) URLs are refused."
    )
    detail: Literal["auto", "low", "high"] | None = None
    file_id: Any = Field(None, description="Not supported (no file store): 400; send image_url.")

    @field_validator("file_id")
    @classmethod
    def _no_file(cls, v: Any) -> None:
        if v is not None:
            raise ValueError(
                "files are not stored by this service: send the image as image_url (a data: URL)"
            )


class OutputText(BaseModel):
    """Text of an earlier assistant turn (an ``output_text`` part sent back as history)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["output_text"]
    text: str = Field(max_length=MAX_CONTENT_CHARS)
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class Refusal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["refusal"]
    refusal: str = Field(max_length=MAX_CONTENT_CHARS)


ContentPart = Annotated[InputText | InputImage | OutputText | Refusal, Field(discriminator="type")]
ToolOutputPart = Annotated[InputText | InputImage, Field(discriminator="type")]


def _text_as_parts(v: Any) -> Any:
    """Text content is one ``input_text`` part: one shape to validate, and error locations without
    pydantic's union branch names.  Text that is too long is refused here, so the error names the
    field as the body spells it (``input.0.content``, not the ``.0.text`` of the part made from it)."""
    if not isinstance(v, str):
        return v
    if len(v) > MAX_CONTENT_CHARS:
        raise ValueError(f"at most {MAX_CONTENT_CHARS} characters, got {len(v)}")
    return [{"type": "input_text", "text": v}]


#: A string or a list of parts (the string validated as one ``input_text`` part).
Content = Annotated[
    list[ContentPart], BeforeValidator(_text_as_parts, json_schema_input_type=str | list[ContentPart])
]
ToolOutput = Annotated[
    list[ToolOutputPart], BeforeValidator(_text_as_parts, json_schema_input_type=str | list[ToolOutputPart])
]


def _total_text(parts: list[Any]) -> list[Any]:
    size = 0
    for p in parts:
        text: str = getattr(p, "text", None) or getattr(p, "refusal", None) or ""
        size += len(text)
    if size > MAX_CONTENT_CHARS:
        raise ValueError(f"at most {MAX_CONTENT_CHARS} characters (all text parts together), got {size}")
    return parts


class MessageItem(BaseModel):
    """A turn: ``{"role", "content"}`` (``type: "message"`` optional)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content
    id: str | None = Field(None, max_length=256, description="Ignored (an earlier output item's id).")
    status: _ITEM_STATUS | None = Field(None, description="Ignored (an earlier output item's status).")
    phase: Literal["commentary", "final_answer"] | None = Field(None, description="Ignored.")

    @field_validator("content")
    @classmethod
    def _size(cls, v: list[Any]) -> list[Any]:
        return _total_text(v)


class FunctionCallItem(BaseModel):
    """A call the model made earlier (sent back as history before its ``function_call_output``)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=64)
    arguments: str = Field(max_length=MAX_CONTENT_CHARS, description="JSON text.")
    id: str | None = Field(None, max_length=256, description="Ignored (an earlier output item's id).")
    status: _ITEM_STATUS | None = None


class FunctionCallOutputItem(BaseModel):
    """The caller's result of one function call."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=256)
    output: ToolOutput
    id: str | None = Field(None, max_length=256)
    status: _ITEM_STATUS | None = None

    @field_validator("output")
    @classmethod
    def _size(cls, v: list[Any]) -> list[Any]:
        return _total_text(v)


def _item_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        kind = v.get("type", "message")
        return kind if isinstance(kind, str) else None
    return getattr(v, "type", None)


InputItem = Annotated[
    Annotated[MessageItem, Tag("message")]
    | Annotated[FunctionCallItem, Tag("function_call")]
    | Annotated[FunctionCallOutputItem, Tag("function_call_output")],
    Discriminator(
        _item_kind,
        custom_error_type="unsupported_item",
        custom_error_message="item type must be message, function_call or function_call_output "
        "(reasoning, item references and hosted tool calls are not supported)",
    ),
]


def _text_as_user_turn(v: Any) -> Any:
    """``input`` as text is one user turn."""
    if isinstance(v, str):
        if len(v) > MAX_CONTENT_CHARS:
            raise ValueError(f"at most {MAX_CONTENT_CHARS} characters, got {len(v)}")
        return [{"role": "user", "content": v}]
    if not isinstance(v, list):
        raise ValueError("must be a string or a list of input items")
    return v


class FunctionTool(BaseModel):
    """Responses' flat function tool. Hosted tools (web search, file search, ...) are refused."""

    model_config = ConfigDict(extra="forbid")
    type: str = Field(json_schema_extra={"enum": ["function"]})
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="1-64 letters, digits, _ or -.")
    description: str | None = Field(None, max_length=10_000)
    parameters: dict[str, Any] | None = Field(None, description="The arguments' JSON schema (an object).")
    strict: bool | None = Field(None, strict=True)

    @field_validator("type")
    @classmethod
    def _function_only(cls, v: str) -> str:
        if v != "function":
            raise ValueError(
                f"tool type {v!r} is not supported: only function tools (hosted tools run at OpenAI only)"
            )
        return v

    @field_validator("parameters")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if v is None else check_json_schema(v)


class NamedFunction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["function"]
    name: str = Field(min_length=1, max_length=64)


class TextFormatText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]


class TextFormatJsonObject(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["json_object"]


class TextFormatJsonSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["json_schema"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    schema_: dict[str, Any] = Field(alias="schema", description="A JSON schema with an object root.")
    description: str | None = Field(None, max_length=10_000)
    strict: bool | None = Field(None, strict=True)

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: dict[str, Any]) -> dict[str, Any]:
        return check_json_schema(v)


TextFormat = Annotated[
    TextFormatText | TextFormatJsonObject | TextFormatJsonSchema, Field(discriminator="type")
]


class TextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    format: TextFormat | None = None
    verbosity: Any = Field(None, description="Not supported: 400 unless null.")

    @field_validator("verbosity")
    @classmethod
    def _no_verbosity(cls, v: Any) -> None:
        if v is not None:
            raise ValueError("is not supported by this service")


#: Responses fields the service knows but cannot honour: why, and the values that mean "not used".
UNSUPPORTED: dict[str, tuple[str, tuple[Any, ...]]] = {
    "previous_response_id": (
        "the service is stateless and stores no response: send the whole conversation in input",
        (),
    ),
    "conversation": (
        "the service is stateless and stores no conversation: send the whole conversation in input",
        (),
    ),
    "prompt": ("stored prompts live at OpenAI, not in this service", ()),
    "background": ("background responses need stored state; this service is stateless", (False,)),
    "include": ("no extra output data is available", ([],)),
    "reasoning": ("reasoning settings are not supported", ()),
    "max_tool_calls": ("hosted tool calls are not supported", ()),
    "top_logprobs": ("logprobs are not available on /v1/responses (use /v1/chat/completions)", ()),
    "truncation": ("only the default (disabled) is supported", ("disabled",)),
    "service_tier": ("only the default (auto) is supported", ("auto", "default")),
    "prompt_cache_key": ("prompt caching is not configurable", ()),
    "prompt_cache_retention": ("prompt caching is not configurable", ()),
    "safety_identifier": ("is not supported (send user)", ()),
    "stream_options": ("stream options are not supported", ()),
}


def _unsupported_field(description: str) -> Any:
    return Field(None, description=f"Not supported: 400 unless null or the default ({description}).")


class ResponsesBody(BaseModel):
    """``POST /v1/responses``: translated to one chat call of the routed provider."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(None, description="Routable model name; default chat model when omitted.")
    input: Annotated[
        list[InputItem], BeforeValidator(_text_as_user_turn, json_schema_input_type=str | list[InputItem])
    ] = Field(
        description="A user message as text, or a list of message, function_call and function_call_output "
        "items.",
    )
    instructions: str | None = Field(
        None, max_length=MAX_CONTENT_CHARS, description="A system message first."
    )
    tools: list[FunctionTool] | None = Field(None, max_length=128)
    tool_choice: Literal["auto", "none", "required"] | NamedFunction | None = None
    parallel_tool_calls: bool | None = Field(None, strict=True)
    temperature: Num | None = Field(None, ge=0, le=2)
    top_p: Num | None = Field(None, ge=0, le=1)
    max_output_tokens: Int | None = Field(None, ge=1, le=128_000)
    text: TextConfig | None = None
    stream: bool | None = Field(None, strict=True)
    user: str | None = Field(None, max_length=256)
    metadata: dict[str, Annotated[str, Field(max_length=512)]] | None = Field(
        None, max_length=16, description="Up to 16 string pairs, echoed in the response; not stored."
    )
    store: bool | None = Field(
        None, strict=True, description="Accepted; nothing is ever stored (the response says store: false)."
    )
    previous_response_id: Any = _unsupported_field("stateless service")
    conversation: Any = _unsupported_field("stateless service")
    prompt: Any = _unsupported_field("stored prompts")
    background: Any = _unsupported_field("false")
    include: Any = _unsupported_field("empty list")
    reasoning: Any = _unsupported_field("reasoning")
    max_tool_calls: Any = _unsupported_field("hosted tools")
    top_logprobs: Any = _unsupported_field("logprobs")
    truncation: Any = _unsupported_field('"disabled"')
    service_tier: Any = _unsupported_field('"auto"')
    prompt_cache_key: Any = _unsupported_field("prompt caching")
    prompt_cache_retention: Any = _unsupported_field("prompt caching")
    safety_identifier: Any = _unsupported_field("send user")
    stream_options: Any = _unsupported_field("stream options")

    @field_validator("input")
    @classmethod
    def _input(cls, v: list[Any]) -> list[Any]:
        if not v:
            raise ValueError("must not be empty")
        if len(v) > MAX_MESSAGES:
            raise ValueError(f"at most {MAX_MESSAGES} items")
        return v

    @field_validator("metadata")
    @classmethod
    def _metadata_keys(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and any(not 1 <= len(k) <= 64 for k in v):
            raise ValueError("keys are 1-64 characters")
        return v

    @field_validator(*UNSUPPORTED, mode="before")
    @classmethod
    def _unsupported(cls, v: Any, info: ValidationInfo) -> None:
        why, no_op = UNSUPPORTED[str(info.field_name)]
        if v is None or v in no_op:
            return None
        raise ValueError(f"not supported: {why}")


#: Union branch names pydantic puts in error locations (a discriminator's tag follows a list index,
#: or ``format``); not part of the body's shape, so left out of the field an error names.
_TAGS = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "input_text",
        "input_image",
        "output_text",
        "refusal",
    }
)
_FORMAT_TAGS = frozenset({"text", "json_object", "json_schema"})


def _body_location(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    out: list[int | str] = []
    for seg in loc:
        prev = out[-1] if out else None
        is_tag = (isinstance(prev, int) and seg in _TAGS) or (prev == "format" and seg in _FORMAT_TAGS)
        if isinstance(seg, str) and (is_tag or "[" in seg or seg == "NamedFunction"):
            continue
        out.append(seg)
    return tuple(out)


def body_errors(exc: ValidationError) -> ValidationError:
    """``exc`` with every error located by the body's own field path (``input.0.content.1.image_url``,
    never pydantic's union branch names), so the 400's message and ``param`` name the field sent."""
    details: list[InitErrorDetails] = [
        {
            "type": PydanticCustomError(e["type"], e["msg"]),
            "loc": _body_location(e["loc"]),
            "input": e.get("input"),
        }
        for e in exc.errors(include_url=False)
    ]
    return ValidationError.from_exception_data(exc.title, details)


# --- the response object ------------------------------------------------------------------------


class OutputTextOut(BaseModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any]
    logprobs: list[Any]


class MessageOut(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    status: _ITEM_STATUS
    content: list[OutputTextOut]


class FunctionCallOut(BaseModel):
    id: str
    type: Literal["function_call"] = "function_call"
    status: _ITEM_STATUS
    call_id: str
    name: str
    arguments: str


class InputTokensDetails(BaseModel):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int


class ResponsesUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class IncompleteDetails(BaseModel):
    reason: Literal["max_output_tokens", "content_filter"]


class ResponseOut(BaseModel):
    """OpenAI's ``response`` object (``output_text`` is a convenience the SDK computes itself)."""

    id: str = Field(description="resp_<hex>; not stored, so it cannot be fetched or continued.")
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["completed", "incomplete", "in_progress"]
    error: None = None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    output: list[MessageOut | FunctionCallOut]
    parallel_tool_calls: bool
    previous_response_id: None = None
    store: Literal[False] = False
    temperature: float | None
    top_p: float | None
    text: dict[str, Any]
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    truncation: Literal["disabled"] = "disabled"
    usage: ResponsesUsage | None
    user: str | None
    metadata: dict[str, str]
