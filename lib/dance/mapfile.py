"""The map files the Dance Party front end loads, read and written in Code.org's exact format.

``{"emojiAssociations": {"<emoji id>": [score per output, in output order]}, "output": ["<id>"],
"modelDescriptiveNames": ["<embedded text>"]}`` (key order as shown; ``modelDescriptiveNames`` may be
absent in old files).  Writing goes through :func:`lib.dance.jsonfmt.format_json` and an atomic
replace.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.dance.jsonfmt import format_json
from lib.dance.lfs import refuse_lfs_pointer
from lib.errors import InvalidRequestError
from lib.fileio import atomic_write_text


@dataclass(frozen=True, slots=True)
class WeightsMap:
    emoji_associations: dict[str, list[float]]
    output: list[str]
    model_descriptive_names: list[str] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"emojiAssociations": self.emoji_associations, "output": self.output}
        if self.model_descriptive_names is not None:
            doc["modelDescriptiveNames"] = self.model_descriptive_names
        return doc

    @property
    def emojis(self) -> list[str]:
        return list(self.emoji_associations)


def parse_map(data: Any, source: str = "map") -> WeightsMap:
    def bad(message: str) -> InvalidRequestError:
        return InvalidRequestError(f"{source}: {message}", field="map")

    if not isinstance(data, dict):
        raise bad("must be a JSON object")
    output = data.get("output")
    if not isinstance(output, list) or not all(isinstance(o, str) for o in output) or not output:
        raise bad("'output' must be a non-empty list of ids")
    assoc = data.get("emojiAssociations")
    if not isinstance(assoc, dict):
        raise bad("'emojiAssociations' must be an object")
    scores: dict[str, list[float]] = {}
    for emoji, vector in assoc.items():
        if not isinstance(vector, list) or len(vector) != len(output):
            raise bad(f"scores of {emoji!r} must be a list of {len(output)} numbers")
        for v in vector:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise bad(f"scores of {emoji!r} must be finite numbers")
        scores[emoji] = vector
    names = data.get("modelDescriptiveNames")
    if names is not None and (not isinstance(names, list) or len(names) != len(output)):
        raise bad("'modelDescriptiveNames' must have one text per output")
    return WeightsMap(scores, list(output), list(names) if names is not None else None)


def load_map(path: Path | str) -> WeightsMap:
    p = Path(path)
    try:
        raw = p.read_bytes()
        refuse_lfs_pointer(raw, p, "map")
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise InvalidRequestError(f"{p}: file not found", field="map") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidRequestError(f"{p}: cannot read: {exc}", field="map") from None
    return parse_map(data, str(p))


def format_map(weights: WeightsMap) -> str:
    return format_json(weights.to_json())


def write_map(path: Path | str, weights: WeightsMap) -> None:
    """Serialise first (so a formatting failure touches nothing), then replace atomically."""
    atomic_write_text(path, format_map(weights))
