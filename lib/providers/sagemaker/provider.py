"""SageMaker real-time endpoints through ``boto3``'s ``sagemaker-runtime`` client.

Chat is ``invoke_endpoint`` with the Messages API body (``messages``); streaming is
``invoke_endpoint_with_response_stream``, whose ``PayloadPart`` events carry the container's SSE
``data:`` lines of ``chat.completion.chunk`` objects in arbitrary pieces. ``n > 1`` is ``n``
parallel calls (the containers answer one choice), as on Bedrock. Usage comes from the container's
``usage`` (the last chunk of a stream, asked for with ``stream_options.include_usage``).

Client, credentials and deadlines exactly as Bedrock (``lib.providers.aws``): one client per
provider instance, botocore retries off, every call on this provider's daemon pool while the
caller waits at most ``deadline.remaining()``, a stream read by a pool thread and shut down when
the caller gives up. The endpoint URL is the ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` setting
(environment or ``config.txt``), else botocore's own choice (``AWS_ENDPOINT_URL``, else regional).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator, Mapping
from functools import partial
from typing import Any

from lib.errors import AIProxyError, InvalidRequestError, InvalidUpstreamResponseError
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
    Usage,
)
from lib.providers.deadline import Deadline
from lib.providers.images import ImageRequest, ImageResult
from lib.providers.sagemaker.errors import PROVIDER, translate
from lib.providers.sagemaker.messages import (
    SseLines,
    build_body,
    endpoint_ref,
    finish_of,
    parse_completion,
    usage_of,
)
from lib.settings import Settings

NAME = PROVIDER
_JSON = "application/json"


class SageMakerProvider(aws.BotoProvider):
    name = NAME
    service = "sagemaker-runtime"
    subject = "SageMaker endpoint"

    def _endpoint_url(self, settings: Settings) -> str | None:
        return settings.aws_endpoint_url_sagemaker_runtime

    # --- chat -----------------------------------------------------------------------------------
    def chat(self, request: ChatRequest, deadline: Deadline) -> ChatResult:
        self._check_choices(request.n)
        model = request.model
        body = json.dumps(build_body(request, stream=False)).encode()
        structured = request.json_schema is not None
        calls = [partial(self._invoke, model, body, i, structured) for i in range(request.n)]
        return self._choices(calls, deadline, model)

    def _invoke(self, model: str, body: bytes, index: int, structured: bool) -> tuple[Choice, Usage]:
        response = self.client.invoke_endpoint(
            **endpoint_ref(model).kwargs(), Body=body, ContentType=_JSON, Accept=_JSON
        )
        payload = response["Body"].read()
        try:
            return parse_completion(json.loads(payload), index, structured)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidUpstreamResponseError(
                f"SageMaker endpoint {model} answered something that is not a chat completion "
                "(does it run an LMI or TGI container with the Messages API?)",
                provider=NAME,
                model=model,
            ) from exc

    def chat_stream(self, request: ChatRequest, deadline: Deadline) -> Generator[ChatDelta, None, None]:
        """Text deltas as the container streams them; the last delta has the finish reason and usage."""
        model = request.model
        body = json.dumps(build_body(request, stream=True)).encode()
        (response,) = self._gather(
            [
                lambda: self.client.invoke_endpoint_with_response_stream(
                    **endpoint_ref(model).kwargs(), Body=body, ContentType=_JSON, Accept="text/event-stream"
                )
            ],
            deadline,
            model,
            on_abandoned=partial(aws.close_stream, key="Body"),
        )
        yield from self._pumped(
            response,
            "Body",
            deadline,
            model,
            deltas=lambda events: self._deltas(events, model, request.json_schema is not None),
            missing=f"SageMaker stream answer of endpoint {model} has no body",
        )

    def _deltas(self, events: Iterator[Any], model: str, structured: bool) -> Iterator[ChatDelta]:
        lines = SseLines()
        finish: FinishReason | None = None
        usage = Usage()
        try:
            for event in events:
                part = event.get("PayloadPart") if isinstance(event, Mapping) else None
                if part is None:
                    continue  # an event type this client does not know yet
                for chunk in lines.feed(bytes(part.get("Bytes") or b"")):
                    text, finish, usage = self._chunk(chunk, model, finish, usage)
                    if text:
                        yield ChatDelta(text=text)
            for chunk in lines.finish():
                text, finish, usage = self._chunk(chunk, model, finish, usage)
                if text:
                    yield ChatDelta(text=text)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidUpstreamResponseError(
                f"SageMaker endpoint {model} streamed something that is not a chat completion chunk",
                provider=NAME,
                model=model,
            ) from exc
        if finish is None:
            raise InvalidUpstreamResponseError(
                f"SageMaker stream of endpoint {model} ended before the answer finished",
                provider=NAME,
                model=model,
            )
        yield ChatDelta(finish_reason=finish, usage=usage)

    @staticmethod
    def _chunk(
        chunk: Any, model: str, finish: FinishReason | None, usage: Usage
    ) -> tuple[str, FinishReason | None, Usage]:
        """One streamed object: (its text, the finish reason so far, the usage so far). A container
        error sent in-band (``{"error": ...}``) ends the stream as an upstream failure."""
        if "error" in chunk:
            raise InvalidUpstreamResponseError(
                f"SageMaker endpoint {model} failed while streaming ({chunk.get('error_type') or 'error'})",
                provider=NAME,
                model=model,
            )
        if chunk.get("usage"):
            usage = usage_of(chunk["usage"])
        text = ""
        for choice in chunk.get("choices") or ():
            text += (choice.get("delta") or {}).get("content") or ""
            finish = finish_of(choice.get("finish_reason")) or finish
        return text, finish, usage

    # --- the rest of the interface ----------------------------------------------------------------
    def embed(self, request: EmbedRequest, deadline: Deadline) -> EmbedResult:
        raise InvalidRequestError(
            f"model sagemaker.{request.model} does not make embeddings (SageMaker)",
            field="model",
            provider=NAME,
            model=request.model,
        )

    def generate_images(self, request: ImageRequest, deadline: Deadline) -> ImageResult:
        raise InvalidRequestError(
            f"model sagemaker.{request.model} does not generate images (SageMaker)",
            field="model",
            provider=NAME,
            model=request.model,
        )

    def list_models(self, deadline: Deadline, api_key: str | None = None) -> list[ModelInfo]:
        """The configured defaults that route here (no control-plane call, no extra IAM permission);
        any other endpoint still routes as ``sagemaker.<endpoint>[.<component>]``."""
        s = self.settings
        configured = (s.default_chat_model, s.default_assessment_model)
        return [ModelInfo(m, NAME, NAME) for m in configured if m and m.startswith("sagemaker.")]

    def _translate(self, exc: BaseException, model: str) -> AIProxyError:
        return translate(exc, model)
