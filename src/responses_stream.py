"""The Responses API's typed server-sent events, built from a provider's ``ChatDelta`` stream.

OpenAI's sequence, each event an ``event: <type>`` line and a JSON ``data`` line carrying ``type`` and
a ``sequence_number`` counting from 0: ``response.created``, ``response.in_progress``; per output item
``response.output_item.added``, then for a message ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``, ``response.content_part.done``, or
for a function call ``response.function_call_arguments.delta``..., ``.done``; then
``response.output_item.done``; last ``response.completed`` (``response.incomplete`` when the token
limit cut the answer) with the whole object and its usage. A failure once the stream has begun is one
``error`` event (the ``/v1`` error object, as on chat streams) and the end.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

from lib.errors import AIProxyError
from lib.providers.base import ChatDelta, FinishReason, ToolCall, ToolCallDelta, Usage
from src import responses_dialect as rd
from src.errors import openai_error_body


class _Events:
    """Numbers and frames the events; keeps the output items in ``output_index`` order."""

    def __init__(self) -> None:
        self._seq = itertools.count()
        self.output: list[dict[str, Any]] = []

    def __call__(self, kind: str, **fields: Any) -> str:
        data = json.dumps({"type": kind, "sequence_number": next(self._seq), **fields}, separators=(",", ":"))
        return f"event: {kind}\ndata: {data}\n\n"

    def add(self, item: dict[str, Any]) -> tuple[int, str]:
        self.output.append(item)
        return len(self.output) - 1, self(
            "response.output_item.added", output_index=len(self.output) - 1, item=item
        )


class _Text:
    """The message item being streamed."""

    def __init__(self, events: _Events) -> None:
        self.id = rd.new_id("msg")
        self.pieces: list[str] = []
        self.index, self.opened = events.add({**rd.message_item(self.id, "", "in_progress"), "content": []})

    def open_events(self, events: _Events) -> Iterator[str]:
        yield self.opened
        yield events(
            "response.content_part.added",
            item_id=self.id,
            output_index=self.index,
            content_index=0,
            part=rd.output_text(""),
        )

    def close(self, events: _Events, status: str) -> Iterator[str]:
        text = "".join(self.pieces)
        where = {"item_id": self.id, "output_index": self.index, "content_index": 0}
        yield events("response.output_text.done", **where, text=text, logprobs=[])
        yield events("response.content_part.done", **where, part=rd.output_text(text))
        item = rd.message_item(self.id, text, status)
        events.output[self.index] = item
        yield events("response.output_item.done", output_index=self.index, item=item)


class _Call:
    """A function call item being streamed (its arguments arrive in pieces)."""

    def __init__(self, events: _Events, first: ToolCallDelta) -> None:
        self.id = rd.new_id("fc")
        self.call = ToolCall(first.id or "", first.name or "", "")
        self.pieces: list[str] = []
        self.index, self.opened = events.add(rd.function_call_item(self.id, self.call, "in_progress"))

    def close(self, events: _Events, status: str) -> Iterator[str]:
        arguments = "".join(self.pieces)
        yield events(
            "response.function_call_arguments.done",
            item_id=self.id,
            output_index=self.index,
            name=self.call.name,
            arguments=arguments,
        )
        item = rd.function_call_item(self.id, ToolCall(self.call.id, self.call.name, arguments), status)
        events.output[self.index] = item
        yield events("response.output_item.done", output_index=self.index, item=item)


def events(
    response: dict[str, Any], deltas: Iterator[ChatDelta], log_fields: dict[str, object]
) -> Iterator[str]:
    """The event stream of one response; ``response`` is ``responses_dialect.envelope``'s object."""
    emit = _Events()
    yield emit("response.created", response=response)
    yield emit("response.in_progress", response=response)
    text: _Text | None = None
    calls: dict[int, _Call] = {}
    finish: FinishReason | None = None
    usage = Usage()
    try:
        for d in deltas:
            if d.index != 0:  # the Responses API has one answer (n is always 1)
                continue
            usage = d.usage or usage
            finish = d.finish_reason or finish
            if d.text:
                if text is None:
                    text = _Text(emit)
                    yield from text.open_events(emit)
                text.pieces.append(d.text)
                yield emit(
                    "response.output_text.delta",
                    item_id=text.id,
                    output_index=text.index,
                    content_index=0,
                    delta=d.text,
                    logprobs=[],
                )
            for tc in d.tool_calls:
                if text is not None:  # text before a call is its own, finished, message item
                    yield from text.close(emit, "completed")
                    text = None
                call = calls.get(tc.index)
                if call is None:
                    call = calls[tc.index] = _Call(emit, tc)
                    yield call.opened
                if tc.arguments:
                    call.pieces.append(tc.arguments)
                    yield emit(
                        "response.function_call_arguments.delta",
                        item_id=call.id,
                        output_index=call.index,
                        delta=tc.arguments,
                    )
    except AIProxyError as exc:
        # Headers are gone already: report the failure in-band, with the same error object as chat.
        log_fields["error_kind"] = exc.kind
        field = getattr(exc, "field", None)
        yield emit(
            "error",
            code=exc.kind,
            message=exc.message,
            param=field,
            **openai_error_body(exc.message, exc.kind, field),
        )
        return
    status = rd.item_status(finish)
    if text is not None:
        yield from text.close(emit, status)
    if text is None and not calls and not emit.output:  # an empty answer is still one (empty) message
        text = _Text(emit)
        yield from text.open_events(emit)
        yield from text.close(emit, status)
    for call in calls.values():
        yield from call.close(emit, status)
    final = rd.finished(response, emit.output, finish, usage)
    yield emit(f"response.{final['status']}", response=final)
