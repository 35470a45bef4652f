"""The persistent embedding cache: (text, model) -> vector, in a safe, diffable JSON file.

Format (version 1)::

    {"format": "aiproxy-dance-embeddings", "version": 1,
     "imported": [{"sha256": "...", "entries": 92}],
     "models": {"<model key>": {"<text>": [floats]}}}

The model key is the routed model name (``bedrock.amazon.titan-embed-text-v1``, ``local``...) plus
``@<n>d`` when a dimension count was requested.  Floats are stored with Python's ``repr`` (exact
round trip).  Every save is atomic (temp file + ``os.replace``).

A legacy pickle cache (``{(text, model): [floats]}``) can be imported once: it is read with an
unpickler that refuses every global except a few harmless builtin containers, so a malicious pickle
cannot run code; entries already in the cache win, and the pickle's sha256 is recorded so importing
the same file again is a no-op.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import pickle
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from lib.dance.lfs import refuse_lfs_pointer
from lib.errors import InvalidRequestError
from lib.fileio import atomic_write_text

FORMAT = "aiproxy-dance-embeddings"
VERSION = 1

#: Globals a legacy pickle may reference (all are plain data constructors).
_SAFE_GLOBALS = frozenset(
    {
        ("builtins", "list"),
        ("builtins", "tuple"),
        ("builtins", "dict"),
        ("builtins", "float"),
        ("builtins", "int"),
        ("builtins", "str"),
        ("__builtin__", "list"),
        ("__builtin__", "tuple"),
        ("__builtin__", "dict"),
        ("__builtin__", "float"),
        ("__builtin__", "int"),
        ("__builtin__", "str"),
        ("__builtin__", "unicode"),
    }
)


class RestrictedUnpickler(pickle.Unpickler):
    """Loads only builtin data: dicts, lists, tuples, floats, ints, strings."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class("builtins", "str" if name == "unicode" else name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a pickle cache")


def safe_unpickle(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data)).load()


def _vector(value: Any) -> list[float] | None:
    if not isinstance(value, list | tuple) or not value:
        return None
    out: list[float] = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float):
            return None
        f = float(v)
        if not math.isfinite(f):
            return None
        out.append(f)
    return out


class EmbeddingCache:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._models: dict[str, dict[str, list[float]]] = {}
        self._imported: list[dict[str, Any]] = []
        self.dirty = False

    # --- persistence ----------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Path | str) -> EmbeddingCache:
        source = Path(path)
        cache = cls(source)
        try:
            raw = source.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cache
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(f"embedding cache {path}: cannot read: {exc}", field="cache") from None
        refuse_lfs_pointer(raw[:100].encode("utf-8"), source, "cache")
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(
                f"embedding cache {path} is not valid JSON ({exc}); move it away to start afresh",
                field="cache",
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("version") != VERSION:
            raise InvalidRequestError(
                f"embedding cache {path} is not a version {VERSION} {FORMAT} file", field="cache"
            )
        models = data.get("models")
        if not isinstance(models, dict):
            raise InvalidRequestError(f"embedding cache {path}: 'models' must be an object", field="cache")
        for model, entries in models.items():
            if not isinstance(entries, dict):
                raise InvalidRequestError(f"embedding cache {path}: bad entries for {model!r}", field="cache")
            for text, value in entries.items():
                vector = _vector(value)
                if vector is None:
                    raise InvalidRequestError(
                        f"embedding cache {path}: bad vector for a text of {model!r}", field="cache"
                    )
                cache._models.setdefault(model, {})[text] = vector
        imported = data.get("imported", [])
        cache._imported = [i for i in imported if isinstance(i, dict)] if isinstance(imported, list) else []
        return cache

    def to_json(self) -> str:
        doc = {
            "format": FORMAT,
            "version": VERSION,
            "imported": self._imported,
            "models": {m: dict(sorted(e.items())) for m, e in sorted(self._models.items())},
        }
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"

    def save(self) -> None:
        if self.path is None:
            raise ValueError("this cache has no path")
        atomic_write_text(self.path, self.to_json())
        self.dirty = False

    # --- lookups --------------------------------------------------------------------------------
    def get(self, text: str, model: str) -> list[float] | None:
        return self._models.get(model, {}).get(text)

    def put(self, text: str, model: str, vector: Sequence[float]) -> None:
        clean = _vector(list(vector))
        if clean is None:
            raise ValueError("an embedding must be a non-empty list of finite numbers")
        self._models.setdefault(model, {})[text] = clean
        self.dirty = True

    def missing(self, texts: Iterable[str], model: str) -> list[str]:
        entries = self._models.get(model, {})
        return [t for t in texts if t not in entries]

    def __len__(self) -> int:
        return sum(len(e) for e in self._models.values())

    def models(self) -> list[str]:
        return sorted(self._models)

    # --- legacy import --------------------------------------------------------------------------
    def import_pickle(self, path: Path | str, model_key: Callable[[str], str]) -> tuple[int, int]:
        """Import a legacy ``{(text, model): [floats]}`` pickle; returns (imported, skipped).

        ``model_key`` maps the pickle's model string to this cache's model key.  Entries already
        present are kept (skipped).  Importing a file whose sha256 was imported before does nothing.
        """
        p = Path(path)
        try:
            data = p.read_bytes()
        except OSError as exc:
            raise InvalidRequestError(
                f"pickle cache {p}: cannot read: {exc}", field="import_pickle_cache"
            ) from None
        refuse_lfs_pointer(data, p, "import_pickle_cache")
        digest = hashlib.sha256(data).hexdigest()
        if any(i.get("sha256") == digest for i in self._imported):
            return 0, 0
        try:
            legacy = safe_unpickle(data)
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as exc:
            raise InvalidRequestError(
                f"pickle cache {p} cannot be imported safely: {exc}", field="import_pickle_cache"
            ) from None
        if not isinstance(legacy, dict):
            raise InvalidRequestError(
                f"pickle cache {p} must hold a dict {{(text, model): [floats]}}", field="import_pickle_cache"
            )
        imported = skipped = 0
        for key, value in legacy.items():
            vector = _vector(value)
            if (
                not isinstance(key, tuple)
                or len(key) != 2
                or not all(isinstance(k, str) for k in key)
                or vector is None
            ):
                raise InvalidRequestError(
                    f"pickle cache {p}: every entry must be (text, model) -> [floats]",
                    field="import_pickle_cache",
                )
            text, model = key
            mkey = model_key(model)
            if self.get(text, mkey) is not None:
                skipped += 1
                continue
            self._models.setdefault(mkey, {})[text] = vector
            imported += 1
        self._imported.append({"sha256": digest, "entries": imported})
        self.dirty = True
        return imported, skipped
