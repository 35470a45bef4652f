"""AWS Bedrock through ``boto3``'s ``bedrock-runtime`` client.

Chat uses the Converse API (``converse`` / ``converse_stream``) for every chat model family — Claude,
Llama, Titan Text, Nova, Mistral — see ``converse`` for the message mapping and structured output.
Embeddings use ``invoke_model`` (Titan v1/v2 one text per call, run in parallel, at most
``EMBED_PARALLELISM`` at once per request; Cohere in batches of 96).  Model ids, including
cross-region inference profile ids (``us.``/``eu.``/``apac.``/``global.``) and ARNs, are sent as
``modelId`` unchanged: no AWS CLI, no account-id lookup, no ARN construction.

Client: one ``bedrock-runtime`` client per provider instance (boto3 clients are thread-safe), built
from ``AWS_REGION``, ``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` (the setting, else botocore's own reading of
the environment variable), and explicit keys / ``AWS_PROFILE`` from settings, else boto3's default
credential chain (environment, shared files, ECS/EC2 roles).  botocore retries are off
(``total_max_attempts=1``): the gateway retries, uniformly.

Deadlines: botocore has no per-call timeout, and building a client per call costs tens of ms, so the
one client has ``read_timeout = REQUEST_DEADLINE_SECONDS`` (an upper bound for any call) and every
call runs on this provider's pool of daemon threads (``pool``) while the caller waits at most
``deadline.remaining()``.
When the deadline passes the caller gets ``UpstreamTimeoutError`` at once, however slowly the upstream
trickles its answer (see ``lib.providers.deadline``).  Under gevent the call itself is interrupted at
the deadline too (``call_bounded``) and drops its connection; in plain threads an abandoned
non-streaming call ends by itself, when its answer is complete or one read waits longer than the
client's read timeout (an upstream that keeps trickling keeps that pool thread and its connection
until it stops).  Under gevent the pool's threads are greenlets, so the wait costs no OS thread.
Streams are read by a pool thread into a queue that the caller drains with the same deadline; at the
deadline the stream's socket is shut down, which ends the pool thread's read at once.  That machinery
and the client construction are shared with the SageMaker provider (``lib.providers.aws``).

Per-request ``api_key`` values are ignored: Bedrock authenticates with the AWS credentials above.
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from functools import partial
from typing import Any

from lib.errors import (
    AIProxyError,
    InvalidRequestError,
    InvalidUpstreamResponseError,
)
from lib.providers import aws
from lib.providers.base import (
    ChatDelta,
    ChatRequest,
    ChatResult,
    Choice,
    EmbedRequest,
    EmbedResult,
    FinishReason,
    ModelInfo,
    ToolCallDelta,
    Usage,
)
from lib.providers.bedrock import embeddings as emb
from lib.providers.bedrock.converse import (
    ConverseCall,
    StructuredOutput,
    build_converse_request,
    finish_reason,
    only_first_tool_call,
    parse_converse_response,
    tool_input_text,
    usage_from,
)
from lib.providers.bedrock.errors import PROVIDER, translate
from lib.providers.bedrock.images import build_body, image_model, parse_answer, translate_image_error
from lib.providers.bedrock.models import chat_capabilities, embed_format, known_models
from lib.providers.deadline import Deadline
from lib.providers.images import ImageRequest, ImageResult
from lib.settings import Settings

NAME = PROVIDER
#: Most Titan embedding calls one request runs at once.
EMBED_PARALLELISM = 8
#: The client configuration (shared with the other boto3 provider, ``lib.providers.aws``).
client_config = aws.client_config


class BedrockProvider(aws.BotoProvider):
    name = NAME
    service = "bedrock-runtime"
    subject = "Bedrock model"

    def _endpoint_url(self, settings: Settings) -> str | None:
        """``AWS_ENDPOINT_URL_BEDROCK_RUNTIME`` from settings (None: botocore reads the environment)."""
        return settings.aws_endpoint_url_bedrock_runtime

    # --- chat -----------------------------------------------------------------------------------
    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        self._check_choices(request.n)
        call = build_converse_request(request, chat_capabilities(request.model))
        calls = [partial(self._converse, call, i, request.model) for i in range(request.n)]
        return self._choices(calls, deadline, request.model)

    def _converse(self, call: ConverseCall, index: int, model: str) -> tuple[Choice, Usage]:
        response = self.client.converse(**call.kwargs)
        return parse_converse_response(
            response, call.structured, index, model, one_tool_call=call.one_tool_call
        )

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Generator[ChatDelta, None, None]:
        """Text deltas as Converse streams them; the last delta has the finish reason and usage.

        With tool-based structured output the tool's JSON input is streamed as text (for a wrapped
        non-object schema it is sent in one piece at the end, unwrapped)."""
        model = request.model
        call = build_converse_request(request, chat_capabilities(model))
        (response,) = self._gather(
            [lambda: self.client.converse_stream(**call.kwargs)],
            deadline,
            model,
            on_abandoned=partial(aws.close_stream, key="stream"),
        )

        def deltas(events: Iterator[Any]) -> Iterator[ChatDelta]:
            found = self._stream_deltas(events, model, call.structured)
            return only_first_tool_call(found) if call.one_tool_call else found

        yield from self._pumped(
            response,
            "stream",
            deadline,
            model,
            deltas=deltas,
            missing=f"Bedrock ConverseStream answer for model {model} has no stream",
        )

    def _stream_deltas(
        self, events: Iterator[Any], model: str, structured: StructuredOutput | None
    ) -> Iterator[ChatDelta]:
        tool_mode = structured is not None and structured.mode == "tool"
        tool_slots: dict[Any, int] = {}  # Converse contentBlockIndex -> OpenAI tool_calls index
        buffered: list[str] = []
        finish: FinishReason | None = None
        stopped = False
        usage: Usage | None = None
        for item in events:
            try:
                if "contentBlockStart" in item and not tool_mode:
                    start = item["contentBlockStart"]
                    use = (start.get("start") or {}).get("toolUse")
                    if use is not None:  # a new tool call: the next stable index
                        slot = tool_slots.setdefault(start.get("contentBlockIndex"), len(tool_slots))
                        call = ToolCallDelta(slot, str(use["toolUseId"]), str(use["name"]))
                        yield ChatDelta(tool_calls=(call,))
                elif "contentBlockDelta" in item:
                    block = item["contentBlockDelta"]
                    delta = block.get("delta") or {}
                    if delta.get("text"):
                        yield ChatDelta(text=str(delta["text"]))
                    elif not tool_mode and "toolUse" in delta:
                        found = tool_slots.get(block.get("contentBlockIndex"))
                        if found is None:
                            raise KeyError("toolUse delta for a block that never started")
                        piece = str(delta["toolUse"].get("input") or "")
                        if piece:
                            yield ChatDelta(tool_calls=(ToolCallDelta(found, arguments=piece),))
                    elif tool_mode and "toolUse" in delta:
                        piece = str(delta["toolUse"].get("input") or "")
                        if structured is not None and structured.wrapped:
                            buffered.append(piece)
                        elif piece:
                            yield ChatDelta(text=piece)
                elif "messageStop" in item:
                    stopped = True
                    finish = finish_reason(item["messageStop"].get("stopReason"), structured)
                elif "metadata" in item:
                    usage = usage_from(item["metadata"].get("usage"))
            except (AttributeError, TypeError, KeyError) as exc:
                raise InvalidUpstreamResponseError(
                    f"Bedrock stream event for model {model} has an unexpected shape",
                    provider=NAME,
                    model=model,
                ) from exc
        if not stopped:
            raise InvalidUpstreamResponseError(
                f"Bedrock stream for model {model} ended before the message stopped",
                provider=NAME,
                model=model,
            )
        if buffered and structured is not None:
            raw = "".join(buffered)
            try:
                text = tool_input_text(json.loads(raw), structured)
            except ValueError:
                text = raw
            yield ChatDelta(text=text)
        yield ChatDelta(finish_reason=finish, usage=usage or Usage())

    # --- embeddings -----------------------------------------------------------------------------
    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        model = request.model
        fmt = embed_format(model)
        if fmt is None:
            raise InvalidRequestError(
                f"bedrock.{model} is not a supported embedding model (use amazon.titan-embed-text-v1, "
                "amazon.titan-embed-text-v2:0 or cohere.embed-*)",
                field="model",
                provider=NAME,
                model=model,
            )
        emb.check_dimensions(fmt, request.dimensions, model)
        texts = list(request.texts)
        if any(not isinstance(t, str) or not t for t in texts):
            raise InvalidRequestError("every input text must be a non-empty string", field="input")
        started = time.monotonic()
        vectors: list[list[float]] = []
        tokens = 0
        if fmt == "cohere":
            batches = [texts[i : i + emb.COHERE_BATCH] for i in range(0, len(texts), emb.COHERE_BATCH)]
            for batch_vectors, batch_tokens in self._gather(
                [partial(self._embed_cohere, model, batch) for batch in batches],
                deadline,
                model,
                limit=EMBED_PARALLELISM,
            ):
                vectors.extend(batch_vectors)
                tokens += batch_tokens
        else:
            for vector, count in self._gather(
                [partial(self._embed_titan, model, fmt, text, request.dimensions) for text in texts],
                deadline,
                model,
                limit=EMBED_PARALLELISM,
            ):
                vectors.append(vector)
                tokens += count
        return EmbedResult(
            model=model,
            provider=NAME,
            vectors=vectors,
            usage=Usage(prompt_tokens=tokens),
            latency_s=time.monotonic() - started,
        )

    def _invoke(self, model: str, body: bytes) -> tuple[bytes, Mapping[str, Any]]:
        response = self.client.invoke_model(
            modelId=model, body=body, contentType="application/json", accept="application/json"
        )
        payload = response["body"].read()
        headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
        return payload, headers

    def _embed_titan(
        self, model: str, fmt: Any, text: str, dimensions: int | None
    ) -> tuple[list[float], int]:
        payload, _ = self._invoke(model, emb.titan_body(fmt, text, dimensions))
        return emb.parse_titan(payload, model)

    def _embed_cohere(self, model: str, texts: Sequence[str]) -> tuple[list[list[float]], int]:
        payload, headers = self._invoke(model, emb.cohere_body(texts))
        return emb.parse_cohere(payload, headers, len(texts), model)

    # --- images ---------------------------------------------------------------------------------
    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        """One ``invoke_model`` call in the model family's format (``images``); the safety filter's
        refusal is ``ContentPolicyError``."""
        model = request.model
        if image_model(model) is None:
            raise InvalidRequestError(
                f"model bedrock.{model} does not generate images", field="model", provider=NAME, model=model
            )
        body = json.dumps(build_body(request)).encode()
        started = time.monotonic()
        (payload,) = aws.gather(
            self._pool,
            [lambda: self._invoke(model, body)[0]],
            deadline,
            translate=lambda exc: translate_image_error(exc, model),
            timeout_error=lambda: self._deadline_error(deadline, model),
        )
        return ImageResult(model, NAME, parse_answer(payload, model), latency_s=time.monotonic() - started)

    # --- models ---------------------------------------------------------------------------------
    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        """The documented Bedrock models plus any configured default that routes to Bedrock.

        A static list (no control-plane call): it needs no extra IAM permission and cannot fail; any
        other model or inference-profile id Bedrock accepts still routes as ``bedrock.<id>``."""
        s = self.settings
        configured = (s.default_chat_model, s.default_embedding_model, s.default_assessment_model)
        extra = tuple(m[len("bedrock.") :] for m in configured if m and m.startswith("bedrock."))
        return known_models(extra)

    def _translate(self, exc: BaseException, model: str) -> AIProxyError:
        return translate(exc, model)
