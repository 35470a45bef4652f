"""Pure mapping between aiproxy's chat types and the Messages API of SageMaker's LLM containers.

The LMI (vLLM / TensorRT-LLM) and TGI containers both accept OpenAI's chat-completions body on
``/invocations`` and answer a ``chat.completion`` (or, streamed, ``chat.completion.chunk`` SSE
lines), so one mapping serves both:

- every ``system`` message, wherever it appears, becomes one leading ``system`` message (chat
  templates expect it first); ``user``/``assistant`` turns keep their order, as plain text;
- ``temperature``, ``max_tokens`` (the container's default when unset), ``stop``, ``top_p``,
  ``seed``, ``presence_penalty``, ``frequency_penalty`` are sent as OpenAI names them;
- structured output (``json_schema``) is an instruction with the schema appended to the system
  prompt, and Markdown code fences around the answer are removed: TGI (``response_format`` type
  ``json_object`` with ``value``) and LMI (type ``json_schema``) spell guided decoding differently,
  and an endpoint does not say which container it runs. The assessment pipeline's repair call
  handles the rare answer that is not valid JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from lib.providers.base import ChatRequest, Choice, FinishReason, Usage
from lib.providers.bedrock.converse import schema_instruction, strip_code_fence

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "eos_token": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "content_filter": "content_filter",
}


@dataclass(frozen=True, slots=True)
class EndpointRef:
    """``sagemaker.<endpoint>[.<inference-component>]`` as boto3 parameters."""

    endpoint: str
    component: str | None = None

    def kwargs(self) -> dict[str, str]:
        out = {"EndpointName": self.endpoint}
        if self.component:
            out["InferenceComponentName"] = self.component
        return out


def endpoint_ref(model_id: str) -> EndpointRef:
    """Split a provider model id; endpoint and component names have no dots, so the first dot
    separates them. Names are checked by SageMaker itself (an unknown one answers "not found")."""
    endpoint, _, component = model_id.partition(".")
    return EndpointRef(endpoint, component or None)


def build_body(request: ChatRequest, *, stream: bool) -> dict[str, Any]:
    system: list[str] = []
    turns: list[dict[str, str]] = []
    for msg in request.messages:
        if msg.role == "system":
            if msg.text.strip():
                system.append(msg.text)
        else:
            turns.append({"role": msg.role, "content": msg.text})
    if request.json_schema is not None:
        system.append(schema_instruction(request.json_schema))
    messages = ([{"role": "system", "content": "\n\n".join(system)}] if system else []) + turns
    body: dict[str, Any] = {"messages": messages}
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.stop:
        body["stop"] = list(request.stop)
    sampling = request.sampling
    for name in ("top_p", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(sampling, name)
        if value is not None:
            body[name] = value
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0
    return max(0, int(value))


def usage_of(raw: object) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))


def finish_of(raw: object) -> FinishReason | None:
    return _FINISH.get(str(raw), "stop") if raw else None


def parse_completion(data: Any, index: int, structured: bool) -> tuple[Choice, Usage]:
    """One ``chat.completion`` answer; raises ``KeyError``/``TypeError``/``ValueError`` on a bad shape."""
    raw = data["choices"][0]
    content = raw["message"].get("content") or ""
    if not isinstance(content, str):
        raise TypeError("message content is not a string")
    text = strip_code_fence(content) if structured else content
    return Choice(index, text, finish_of(raw.get("finish_reason"))), usage_of(data.get("usage"))


class SseLines:
    """``data:`` payloads of server-sent events arriving in arbitrary byte pieces (a PayloadPart may
    end in the middle of a line or of a UTF-8 character)."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, piece: bytes) -> Iterator[Any]:
        """JSON values of the complete ``data:`` lines so far (``[DONE]`` is skipped)."""
        self._buffer += piece
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            text = line.strip()
            if not text.startswith(b"data:"):
                continue  # blank separators, comments, ``event:``/``id:`` fields
            payload = text[len(b"data:") :].strip()
            if payload and payload != b"[DONE]":
                yield json.loads(payload)

    def finish(self) -> Iterator[Any]:
        """A last line the stream did not end with a newline."""
        rest, self._buffer = self._buffer, b""
        if rest.strip():
            yield from self.feed(rest + b"\n")
