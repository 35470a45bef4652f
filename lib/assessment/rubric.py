"""Rubric CSV parsing and key-concept matching.

A rubric is CSV text with a header row and a ``Key Concept`` column; the label-named columns
(``Extensive Evidence`` ... ``No Evidence``) hold the rubric text and are passed to the model as they are.
Tolerated: a UTF-8 BOM, CRLF / CR line ends, smart quotes (in matching), blank trailing lines, extra columns.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass

from lib.errors import InvalidRequestError

KEY_CONCEPT = "Key Concept"

_QUOTES = str.maketrans(
    {
        "\u201c": '"',
        "\u201d": '"',
        "\u201e": '"',
        "\u201f": '"',
        "\u00ab": '"',
        "\u00bb": '"',
        "\u2018": "'",
        "\u2019": "'",
        "\u201a": "'",
        "\u201b": "'",
        "\u2013": "-",
        "\u2014": "-",
        "\u00a0": " ",
        "\ufeff": "",
    }
)
_SPACE = re.compile(r"\s+")


def normalize_name(text: str) -> str:
    """The form used to compare key concepts and column names: NFKC, straight quotes, one space, casefold."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return _SPACE.sub(" ", text).strip().casefold()


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_bom(text: str) -> str:
    return text[1:] if text.startswith("\ufeff") else text


@dataclass(frozen=True)
class Rubric:
    key_concepts: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    columns: tuple[str, ...]
    #: the CSV as it is shown to the model (BOM removed, ``\n`` line ends)
    text: str

    def lookup(self, name: str) -> str | None:
        """The rubric's own spelling of ``name`` (smart quotes, case and spacing ignored), or None."""
        wanted = normalize_name(name)
        for kc in self.key_concepts:
            if normalize_name(kc) == wanted:
                return kc
        return None

    def index(self, key_concept: str) -> int:
        return self.key_concepts.index(key_concept)


def _read_csv(clean: str, field: str) -> list[tuple[int, list[str]]]:
    """Records with the line each starts on; blank records dropped. Strict: an unterminated quote or
    text after a closing quote is an error, not a silently merged cell."""
    reader = csv.reader(io.StringIO(clean), strict=True)
    table: list[tuple[int, list[str]]] = []
    start = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return table
        except csv.Error as exc:
            hint = " (a quoted cell is never closed)" if "unexpected end of data" in str(exc) else ""
            raise InvalidRequestError(
                f"{field} is not valid CSV: {exc} in the record starting on line {start}{hint}", field=field
            ) from None
        if any(cell.strip() for cell in row):
            table.append((start, row))
        start = reader.line_num + 1


def parse_rubric(text: str, *, field: str = "rubric") -> Rubric:
    """Parse rubric CSV; raise ``InvalidRequestError(field=field)`` naming the problem and its line.

    Refused: invalid CSV (unterminated quote, text after a closing quote), no ``Key Concept`` column,
    two header columns with the same name, a record with more cells than the header (text that would be
    lost, usually an unquoted comma), text under a column with no name, a record with text but no key
    concept, the same key concept twice, no key concepts at all.
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequestError(f"{field} is empty", field=field)
    clean = normalize_newlines(strip_bom(text)).strip("\n")
    table = _read_csv(clean, field)
    if not table:
        raise InvalidRequestError(f"{field} has no header row", field=field)
    header = [cell.strip().lstrip("\ufeff") for cell in table[0][1]]
    wanted = normalize_name(KEY_CONCEPT)
    kc_col = next((i for i, h in enumerate(header) if normalize_name(h) == wanted), None)
    if kc_col is None:
        raise InvalidRequestError(f"{field} needs a {KEY_CONCEPT!r} column in its header row", field=field)
    names: set[str] = set()
    for h in header:
        if h and normalize_name(h) in names:
            raise InvalidRequestError(f"{field} header names the column {h!r} twice", field=field)
        names.add(normalize_name(h))
    key_concepts: list[str] = []
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for line_no, line in table[1:]:
        extra = [c for c in line[len(header) :] if c.strip()]
        if extra:
            raise InvalidRequestError(
                f"{field} line {line_no} has {len(line)} cells but the header has {len(header)} columns "
                "(quote cells that contain commas)",
                field=field,
            )
        unnamed = next((i for i, c in enumerate(line) if c.strip() and not header[i]), None)
        if unnamed is not None:
            raise InvalidRequestError(
                f"{field} line {line_no} has text in column {unnamed + 1}, "
                "which has no name in the header row",
                field=field,
            )
        kc = line[kc_col].strip() if kc_col < len(line) else ""
        if not kc:
            raise InvalidRequestError(f"{field} line {line_no} has text but no {KEY_CONCEPT}", field=field)
        norm = normalize_name(kc)
        if norm in seen:
            raise InvalidRequestError(f"{field} lists key concept {kc!r} twice (line {line_no})", field=field)
        seen.add(norm)
        key_concepts.append(kc)
        rows.append({h: (line[i].strip() if i < len(line) else "") for i, h in enumerate(header) if h})
    if not key_concepts:
        raise InvalidRequestError(f"{field} has no key concepts (no rows under the header)", field=field)
    return Rubric(tuple(key_concepts), tuple(rows), tuple(h for h in header if h), clean + "\n")
