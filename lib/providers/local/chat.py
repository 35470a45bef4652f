"""SmolLM2-135M-Instruct on llama.cpp: prompt formatting, sampling, stop handling, token counts.

One ``SmolLM2Engine`` wraps one ``llama_cpp.Llama`` context; a context serves one generation at a
time, so the provider keeps a small pool of engines (the weights are memory-mapped and shared).
Everything in this module runs on an OS thread (see ``lib.concurrency``); it never touches gevent.

Streaming and non-streaming use the same generator (``SmolLM2Engine.generate``), so at temperature 0
the streamed text is exactly the non-streamed text.
"""

from __future__ import annotations

import codecs
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.errors import ContextTooLongError, UpstreamTimeoutError
from lib.providers.base import FinishReason, JsonSchema, Message
from lib.providers.deadline import Deadline
from lib.providers.local.grammar import json_gbnf
from lib.providers.local.tools import ToolPlan, chat_messages, grammar_text

#: Sampling defaults when the caller leaves them out (llama.cpp's own defaults).
DEFAULT_TEMPERATURE = 0.8
TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05
SCHEMA_HINT = "Answer only with a JSON value that follows this JSON schema:\n"


@dataclass(frozen=True, slots=True)
class Piece:
    """A chunk of generated text; the last piece of a choice has ``finish_reason`` and token counts."""

    text: str
    finish_reason: FinishReason | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def compile_grammar(target: JsonSchema | ToolPlan) -> Any:
    """A llama.cpp grammar (``LlamaGrammar``) that only admits JSON valid for a ``JsonSchema``, or
    the answers a ``ToolPlan`` allows (see ``lib.providers.local.tools``)."""
    from llama_cpp import LlamaGrammar

    if isinstance(target, ToolPlan):
        return LlamaGrammar.from_string(grammar_text(target), verbose=False)
    gbnf = json_gbnf(target.schema, field="json_schema", what=f"json_schema {target.name!r}")
    return LlamaGrammar.from_string(gbnf, verbose=False)


class SmolLM2Engine:
    def __init__(self, gguf: Path, *, n_ctx: int, n_threads: int, n_threads_batch: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(
            model_path=str(gguf),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            verbose=False,
        )
        self.n_ctx = n_ctx
        meta = self.llm.metadata
        self._template = meta.get("tokenizer.chat_template", "")
        self._eos = self.llm._model.token_get_text(self.llm.token_eos())
        self._bos = self.llm._model.token_get_text(self.llm.token_bos())
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._formatter = Jinja2ChatFormatter(
            template=self._template, eos_token=self._eos, bos_token=self._bos, add_generation_prompt=True
        )

    # --- prompt ---------------------------------------------------------------------------------
    def prompt_tokens(
        self, messages: Sequence[Message], schema: JsonSchema | None, plan: ToolPlan | None = None
    ) -> list[int]:
        msgs = chat_messages(messages, plan)
        if schema is not None:
            hint = SCHEMA_HINT + json.dumps(schema.schema, separators=(",", ":"))
            if msgs and msgs[0]["role"] == "system":
                msgs[0] = {"role": "system", "content": msgs[0]["content"] + "\n\n" + hint}
            else:
                msgs.insert(0, {"role": "system", "content": hint})
        prompt = self._formatter(messages=msgs).prompt  # type: ignore[arg-type]
        return list(self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    def count_tokens(self, text: str) -> int:
        return len(self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    # --- generation -----------------------------------------------------------------------------
    def generate(
        self,
        tokens: list[int],
        *,
        temperature: float,
        max_tokens: int,
        stop: Sequence[str],
        grammar: Any,
        seed: int | None,
        deadline: Deadline | None,
        top_p: float = TOP_P,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
    ) -> Iterator[Piece]:
        """Yield text pieces (never empty ones) and finally a ``Piece`` with the finish reason."""
        import llama_cpp

        if len(tokens) >= self.n_ctx:
            raise ContextTooLongError(
                f"prompt is {len(tokens)} tokens; the local model's context is {self.n_ctx}",
                provider="local",
            )
        budget = min(max_tokens, self.n_ctx - len(tokens))
        self.llm.set_seed(seed if seed is not None else random.randrange(2**31))  # noqa: S311
        vocab = self.llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = [s for s in stop if s]
        held = ""  # text that might be the start of a stop sequence
        produced = 0
        finish: FinishReason = "length"
        cut_by_stop = False
        # Evaluate the whole prompt afresh: llama-cpp-python's prefix-cache reuse evaluates the last
        # prompt token alone, whose logits differ in the last bits from a batched evaluation, which
        # makes greedy (temperature 0) answers depend on the previous request.
        self.llm.reset()
        gen = self.llm.generate(
            tokens,
            top_k=TOP_K,
            top_p=top_p,
            min_p=MIN_P,
            temp=max(0.0, temperature),
            repeat_penalty=1.0,
            presence_penalty=presence_penalty,
            frequency_penalty=frequency_penalty,
            grammar=grammar,
        )
        try:
            for token in gen if budget > 0 else ():
                if deadline is not None and deadline.expired:
                    raise UpstreamTimeoutError(
                        f"request deadline of {deadline.seconds:g} s passed during local generation",
                        provider="local",
                    )
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                produced += 1
                held += decoder.decode(self.llm.detokenize([token]))
                if stops:
                    cut = _find_stop(held, stops)
                    if cut is not None:
                        held = held[:cut]
                        finish = "stop"
                        cut_by_stop = True
                        break
                    emit_upto = len(held) - _partial_stop_suffix(held, stops)
                else:
                    emit_upto = len(held)
                if emit_upto > 0:
                    yield Piece(held[:emit_upto])
                    held = held[emit_upto:]
                if produced >= budget:
                    break
        finally:
            gen.close()
        if not cut_by_stop:
            held += decoder.decode(b"", final=True)
        yield Piece(held, finish, prompt_tokens=len(tokens), completion_tokens=produced)


def _find_stop(text: str, stops: Sequence[str]) -> int | None:
    hits = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(hits) if hits else None


def _partial_stop_suffix(text: str, stops: Sequence[str]) -> int:
    """Length of the longest tail of ``text`` that could still grow into a stop sequence."""
    best = 0
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:k]):
                best = k
                break
    return best
