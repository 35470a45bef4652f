"""The Dance AI catalog: the outputs of each type (dropdown order) and the emojis.

A catalog is JSON with ``palettes``, ``background_effects`` and ``foreground_effects`` (lists of
``{"id", "text", "label"}``; ``text`` is what gets embedded) and ``emojis`` (a list of ids, or of
``{"id", "text"}``; a missing text is derived from the id: ``smiling-face-with-hearts`` ->
``smiling face with hearts``).  The project keeps its own copy in ``lib/dance/data/catalog.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.dance.lfs import refuse_lfs_pointer
from lib.errors import InvalidRequestError

DEFAULT_CATALOG = Path(__file__).resolve().parent / "data" / "catalog.json"


@dataclass(frozen=True, slots=True)
class OutputType:
    key: str  # the catalog key, e.g. "palettes"
    filename: str  # the map file the front end loads
    field: str  # the Blockly field the runtime fills (apps/src/dance/ai/types.ts FieldKey)


OUTPUT_TYPES: tuple[OutputType, ...] = (
    OutputType("palettes", "cached_palettes_map.json", "backgroundColor"),
    OutputType("background_effects", "cached_background_effects_map.json", "backgroundEffect"),
    OutputType("foreground_effects", "cached_foreground_effects_map.json", "foregroundEffect"),
)


@dataclass(frozen=True, slots=True)
class CatalogItem:
    id: str
    text: str
    label: str = ""


@dataclass(frozen=True, slots=True)
class Emoji:
    id: str
    text: str


@dataclass(frozen=True, slots=True)
class Catalog:
    outputs: dict[str, tuple[CatalogItem, ...]]  # OutputType.key -> items in dropdown order
    emojis: tuple[Emoji, ...]
    embedding_model: str | None = None

    def all_texts(self) -> list[str]:
        """Every text to embed, each once, outputs first (in type order) then emojis."""
        seen: dict[str, None] = {}
        for kind in OUTPUT_TYPES:
            for item in self.outputs[kind.key]:
                seen.setdefault(item.text, None)
        for emoji in self.emojis:
            seen.setdefault(emoji.text, None)
        return list(seen)


def text_from_id(emoji_id: str) -> str:
    """``smiling-face-with-hearts`` -> ``smiling face with hearts`` (``_`` counts as ``-``)."""
    return " ".join(emoji_id.replace("_", "-").split("-")).strip()


def _bad(message: str, path: Path) -> InvalidRequestError:
    return InvalidRequestError(f"catalog {path}: {message}", field="catalog")


def _text(value: Any, what: str, path: Path) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{what} must be a non-empty string", path)
    return value


def parse_catalog(data: Any, path: Path) -> Catalog:
    if not isinstance(data, dict):
        raise _bad("must be a JSON object", path)
    outputs: dict[str, tuple[CatalogItem, ...]] = {}
    for kind in OUTPUT_TYPES:
        raw = data.get(kind.key)
        if not isinstance(raw, list) or not raw:
            raise _bad(f"{kind.key!r} must be a non-empty list", path)
        items = []
        for i, entry in enumerate(raw):
            if not isinstance(entry, dict):
                raise _bad(f"{kind.key}[{i}] must be an object with id and text", path)
            item_id = _text(entry.get("id"), f"{kind.key}[{i}].id", path)
            text = _text(entry.get("text"), f"{kind.key}[{i}].text", path)
            label = entry.get("label", "")
            items.append(CatalogItem(item_id, text, label if isinstance(label, str) else ""))
        ids = [item.id for item in items]
        if len(set(ids)) != len(ids):
            raise _bad(f"duplicate id in {kind.key!r}", path)
        outputs[kind.key] = tuple(items)
    raw_emojis = data.get("emojis")
    if not isinstance(raw_emojis, list) or len(raw_emojis) < 3:
        raise _bad("'emojis' must be a list of at least 3 ids or {id, text} objects", path)
    emojis = []
    for i, entry in enumerate(raw_emojis):
        if isinstance(entry, str):
            emoji_id = _text(entry, f"emojis[{i}]", path)
            emojis.append(Emoji(emoji_id, text_from_id(emoji_id)))
        elif isinstance(entry, dict):
            emoji_id = _text(entry.get("id"), f"emojis[{i}].id", path)
            raw_text = entry.get("text")
            text = _text(raw_text, f"emojis[{i}].text", path) if raw_text else text_from_id(emoji_id)
            emojis.append(Emoji(emoji_id, text))
        else:
            raise _bad(f"emojis[{i}] must be an id or an object", path)
    if len({e.id for e in emojis}) != len(emojis):
        raise _bad("duplicate emoji id", path)
    model = data.get("embedding_model")
    return Catalog(outputs, tuple(emojis), model if isinstance(model, str) else None)


def load_catalog(path: Path | str | None = None) -> Catalog:
    source = Path(path) if path is not None else DEFAULT_CATALOG
    try:
        raw = source.read_bytes()
        refuse_lfs_pointer(raw, source, "catalog")
        data = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise _bad("file not found", source) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _bad(f"cannot read: {exc}", source) from None
    return parse_catalog(data, source)
