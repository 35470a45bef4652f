"""``dance-weights``: regenerate, preview and diff the Dance AI emoji -> effect maps.

    python -m lib.dance.weights generate [--model M] [--output-dir DIR] [--dry-run] [--max-new N] ...
    python -m lib.dance.weights preview EMOJI EMOJI EMOJI [--maps-dir DIR] [--seed N] [--bad]
    python -m lib.dance.weights diff OLD_DIR NEW_DIR [--json] [--fail-on FRACTION]

Exit codes: 0 success (``diff``: no triple's top 3 changed beyond ``--fail-on``); 1 ``diff`` found
changes; 2 error (bad options, settings, catalog, upstream failure); 3 ``generate`` refused by
``--max-new`` (nothing sent, nothing written).  See the README section "Dance AI weights".
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import random
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lib.dance.cache import EmbeddingCache
from lib.dance.catalog import DEFAULT_CATALOG, OUTPUT_TYPES, OutputType, load_catalog
from lib.dance.cost import TokenCounter, estimate_cost, format_cost, price_per_million
from lib.dance.mapfile import WeightsMap, format_map, load_map
from lib.dance.scoring import build_map
from lib.dance.selection import BOTTOM_OPTIONS, TOP_OPTIONS, Quality, TypeDiff, candidates, choose, diff_maps
from lib.errors import AIProxyError, InvalidRequestError, InvalidUpstreamResponseError, UnknownModelError
from lib.fileio import atomic_write_text
from lib.providers.gateway import Gateway
from lib.providers.routing import Route
from lib.settings import PRODUCTION_EMBEDDING_MODEL, SettingsError, load_settings

PROG = "dance-weights"
DEFAULT_OUTPUT_DIR = Path("dance-maps")
DEFAULT_BATCH_SIZE = 64
EXIT_OK = 0
EXIT_CHANGED = 1
EXIT_ERROR = 2
EXIT_REFUSED = 3

log = logging.getLogger(__name__)


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "aiproxy" / "dance-embeddings.json"


def cache_model_key(route: Route, dimensions: int | None = None) -> str:
    """The cache's model key: the routed model name, plus ``@<n>d`` when dimensions were asked for."""
    return route.name + (f"@{dimensions}d" if dimensions else "")


def legacy_model_key(gateway: Gateway, model: str) -> str:
    """Map a legacy pickle's model string to a cache key.

    Routable names are used as routed; a bare Bedrock id such as ``amazon.titan-embed-text-v1``
    (what Code.org's old script stored) becomes ``bedrock.amazon.titan-embed-text-v1``.
    """
    for candidate in (model, f"bedrock.{model}"):
        try:
            return gateway.resolve(candidate).name
        except UnknownModelError:
            continue
    return model


#: A bare Bedrock model id of an embedding vendor (``amazon.titan-embed-text-v1``, ``cohere.embed-...``).
BARE_BEDROCK_EMBEDDING_ID = re.compile(r"(?:amazon|cohere)\.[A-Za-z0-9._:-]+")


def routable_model(gateway: Gateway, model: str) -> str:
    """``--model`` as the gateway routes it. Code.org's bare Bedrock id (``amazon.titan-embed-text-v1``,
    also the catalog's ``embedding_model``) is accepted as ``bedrock.<id>``; anything else unknown
    raises the gateway's own error (which lists the known models)."""
    try:
        gateway.resolve(model)
        return model
    except UnknownModelError:
        if not BARE_BEDROCK_EMBEDDING_ID.fullmatch(model):
            raise
        try:
            gateway.resolve(f"bedrock.{model}")
        except UnknownModelError:
            pass
        else:
            return f"bedrock.{model}"
        raise


# --- generate -------------------------------------------------------------------------------------


@dataclass(slots=True)
class GenerateOptions:
    catalog: Path = DEFAULT_CATALOG
    output_dir: Path = DEFAULT_OUTPUT_DIR
    model: str = PRODUCTION_EMBEDDING_MODEL
    cache: Path | None = None  # None -> default_cache_path()
    import_pickle_cache: Path | None = None
    dry_run: bool = False
    max_new: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    dimensions: int | None = None
    progress: bool = True


@dataclass(slots=True)
class GenerateReport:
    model: str
    texts: int
    cache_hits: int
    to_embed: list[str]
    embedded: int = 0
    tokens_estimated: int = 0  # of the texts sent (or, on a dry run, that would be sent)
    tokens_reported: int = 0  # what the provider said it billed
    price: float | None = None
    imported: int = 0
    written: list[Path] = field(default_factory=list)
    dry_run: bool = False

    @property
    def cost(self) -> float | None:
        tokens = self.tokens_reported or self.tokens_estimated
        return estimate_cost(tokens, self.price)

    def summary(self) -> str:
        tokens = f"~{self.tokens_estimated} tokens (estimated)"
        if self.tokens_reported:
            tokens = f"{self.tokens_reported} tokens (provider-reported; estimated {self.tokens_estimated})"
        price = "unknown price" if self.price is None else f"${self.price:g} per 1M tokens"
        where = f"; wrote {len(self.written)} maps" if self.written else ""
        if self.written:
            where += f" to {self.written[0].parent}"
        sent = f"would embed {len(self.to_embed)}" if self.dry_run else f"embedded {self.embedded}"
        return (
            f"{PROG}: {self.model}: {self.texts} texts, {sent}, {self.cache_hits} cache hits, {tokens}, "
            f"estimated cost {format_cost(self.cost)} ({price}){where}"
        )


def _chunks(items: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _progress(total: int, desc: str, stream: TextIO, enabled: bool) -> Any:
    """A tqdm bar on ``stream`` (stderr), so stdout keeps only results."""
    from tqdm import tqdm

    # disable=None lets tqdm switch itself off when the stream is not a terminal.
    return tqdm(total=total, desc=desc, unit="text", file=stream, disable=None if enabled else True)


def generate(options: GenerateOptions, gateway: Gateway, *, out: TextIO, err: TextIO) -> GenerateReport:
    """Embed what the cache lacks, then write the three maps. See the module docs for exit codes."""
    if options.batch_size < 1:
        raise InvalidRequestError("--batch-size must be at least 1", field="batch_size")
    if options.max_new is not None and options.max_new < 0:
        raise InvalidRequestError("--max-new must be 0 or more", field="max_new")
    catalog = load_catalog(options.catalog)
    model = routable_model(gateway, options.model)
    route = gateway.resolve(model)
    if gateway.settings.model_fallbacks.get(route.name):
        # A fallback would silently mix two embedding spaces in one map (and one cache key).
        raise InvalidRequestError(
            f"MODEL_FALLBACKS configures a fallback for {route.name}; embeddings of different models "
            "cannot be mixed, so run with MODEL_FALLBACKS= (empty) in the environment",
            field="model",
        )
    key = cache_model_key(route, options.dimensions)
    cache = EmbeddingCache.load(options.cache or default_cache_path())

    report = GenerateReport(
        model=route.name,
        texts=0,
        cache_hits=0,
        to_embed=[],
        price=price_per_million(route),
        dry_run=options.dry_run,
    )
    if options.import_pickle_cache is not None:
        imported, skipped = cache.import_pickle(
            options.import_pickle_cache, lambda m: legacy_model_key(gateway, m)
        )
        report.imported = imported
        source = options.import_pickle_cache
        if imported or skipped:
            message = f"imported {imported} embeddings from {source} ({skipped} already cached)"
        else:
            message = f"{source} was already imported (or is empty)"
        print(f"{PROG}: {message}", file=out)
        if not options.dry_run and cache.dirty:
            cache.save()

    texts = catalog.all_texts()
    missing = cache.missing(texts, key)
    counter = TokenCounter()
    tokens = {t: counter.count(t) for t in missing}
    report.texts = len(texts)
    report.cache_hits = len(texts) - len(missing)
    report.to_embed = missing
    report.tokens_estimated = sum(tokens.values())

    if options.dry_run:
        print(
            f"dry run: {len(texts)} texts for {key}; {report.cache_hits} in the cache "
            f"({cache.path}); {len(missing)} would be embedded:",
            file=out,
        )
        for text in missing:
            print(f"  {tokens[text]:4d}  {text}", file=out)
        print(
            f"total ~{report.tokens_estimated} tokens ({counter.method}), estimated cost "
            f"{format_cost(report.cost)}. Nothing was sent or written.",
            file=out,
        )
        print(report.summary(), file=out)
        return report

    if options.max_new is not None and len(missing) > options.max_new:
        raise InvalidRequestError(
            f"{len(missing)} texts are not in the embedding cache for {key} but --max-new allows "
            f"{options.max_new}; nothing was sent or written (see them with --dry-run)",
            field="max_new",
        )

    vectors: dict[str, list[float]] = {}
    for text in texts:
        cached = cache.get(text, key)
        if cached is not None:
            vectors[text] = cached
    if missing:
        bar = _progress(len(missing), f"embedding with {route.name}", err, options.progress)
        try:
            for batch in _chunks(missing, options.batch_size):
                result = gateway.embed(model, batch, dimensions=options.dimensions)
                if len(result.vectors) != len(batch):
                    raise InvalidUpstreamResponseError(
                        f"asked for {len(batch)} embeddings, got {len(result.vectors)}",
                        provider=route.provider,
                        model=route.name,
                    )
                for text, vector in zip(batch, result.vectors, strict=True):
                    cache.put(text, key, vector)
                    vectors[text] = cache.get(text, key) or []
                report.embedded += len(batch)
                report.tokens_reported += result.usage.prompt_tokens
                cache.save()  # what was paid for is kept even if a later batch fails
                bar.update(len(batch))
        finally:
            bar.close()

    sizes = {len(v) for v in vectors.values()}
    if len(sizes) > 1:
        raise InvalidUpstreamResponseError(
            f"embeddings for {key} have different sizes {sorted(sizes)}; the cache mixes models "
            f"(move {cache.path} away or use another --cache)",
            provider=route.provider,
            model=route.name,
        )
    maps = {kind: build_map(catalog, kind, vectors) for kind in OUTPUT_TYPES}
    texts_out = {kind: format_map(m) for kind, m in maps.items()}  # serialise all before writing any
    for kind, text in texts_out.items():
        path = options.output_dir / kind.filename
        atomic_write_text(path, text)
        report.written.append(path)
    print(report.summary(), file=out)
    return report


# --- preview --------------------------------------------------------------------------------------


def load_maps(directory: Path) -> dict[OutputType, WeightsMap]:
    if not directory.is_dir():
        raise InvalidRequestError(f"{directory} is not a folder", field="maps_dir")
    maps = {}
    for kind in OUTPUT_TYPES:
        path = directory / kind.filename
        if path.is_file():
            maps[kind] = load_map(path)
    if not maps:
        names = ", ".join(k.filename for k in OUTPUT_TYPES)
        raise InvalidRequestError(f"{directory} holds none of {names}", field="maps_dir")
    return maps


def preview(
    directory: Path, emojis: Sequence[str], rng: random.Random, quality: Quality, *, out: TextIO
) -> dict[str, dict[str, object]]:
    maps = load_maps(directory)
    result: dict[str, dict[str, object]] = {}
    print(f"emojis: {' + '.join(emojis)}", file=out)
    for kind, weights in maps.items():
        top = candidates(weights, emojis, "good")
        pool = top if quality == "good" else candidates(weights, emojis, "bad")
        pick = choose(weights, emojis, rng, quality)
        width = max(len(r.output) for r in pool)
        print(f"\n{kind.key} ({kind.field}):", file=out)
        if quality == "bad":
            print(f"  bottom {BOTTOM_OPTIONS} (a 'bad' pick comes from these):", file=out)
        for i, ranked in enumerate(pool, 1):
            print(f"  {i:2d}. {ranked.output:<{width}}  {ranked.score:.3f}", file=out)
        print(f"  pick: {pick.output}", file=out)
        result[kind.key] = {
            "top3": [{"output": r.output, "score": round(r.score, 6)} for r in top],
            "pick": pick.output,
        }
    return result


# --- diff -----------------------------------------------------------------------------------------


def diff_dirs(
    old_dir: Path, new_dir: Path, *, movers: int, examples: int
) -> tuple[list[TypeDiff], list[str], list[str]]:
    old = load_maps(old_dir)
    new = load_maps(new_dir)
    diffs = [
        diff_maps(kind.key, old[kind], new[kind], movers=movers, examples=examples)
        for kind in OUTPUT_TYPES
        if kind in old and kind in new
    ]
    only_old = [k.key for k in OUTPUT_TYPES if k in old and k not in new]
    only_new = [k.key for k in OUTPUT_TYPES if k in new and k not in old]
    if not diffs:
        raise InvalidRequestError(f"{old_dir} and {new_dir} have no map file in common", field="maps_dir")
    return diffs, only_old, only_new


def print_diff(diffs: list[TypeDiff], only_old: list[str], only_new: list[str], out: TextIO) -> None:
    for d in diffs:
        print(
            f"{d.name}: {d.triples} triples over {len(d.emojis)} emojis; top-{TOP_OPTIONS} set changed for "
            f"{d.changed} ({d.changed_fraction:.1%}), all {TOP_OPTIONS} replaced for {d.changed_all_three}; "
            f"largest score change {d.max_score_change:.3f}",
            file=out,
        )
        for label, items in (
            ("outputs added", d.added_outputs),
            ("outputs removed", d.removed_outputs),
            ("emojis only in old", d.only_old_emojis),
            ("emojis only in new", d.only_new_emojis),
        ):
            if items:
                print(f"  {label}: {', '.join(items)}", file=out)
        if d.movers:
            width = max(len(m.output) for m in d.movers)
            print(
                f"  biggest movers (triples with the output in their top {TOP_OPTIONS}, old -> new):",
                file=out,
            )
            for m in d.movers:
                print(
                    f"    {m.output:<{width}}  {m.old_count:4d} -> {m.new_count:4d}  ({m.delta:+d})", file=out
                )
        if d.examples:
            print("  examples:", file=out)
            for t in d.examples:
                print(
                    f"    {' + '.join(t.emojis)}: {', '.join(t.old_top)} -> {', '.join(t.new_top)}", file=out
                )
    for name in only_old:
        print(f"{name}: only in the old folder", file=out)
    for name in only_new:
        print(f"{name}: only in the new folder", file=out)


# --- command line ---------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError("must be between 0 and 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Regenerate, preview and diff the Dance AI emoji -> effect score maps.",
        epilog="Exit codes: 0 ok; 1 diff found changes; 2 error; 3 generate refused by --max-new.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log retries and provider details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{generate,preview,diff}")

    gen = sub.add_parser(
        "generate",
        help="embed the catalog and write the three maps",
        description=(
            "Embed every catalog text the cache lacks (and only those) with MODEL through the "
            "aiproxy gateway, then write cached_palettes_map.json, cached_background_effects_map.json "
            "and cached_foreground_effects_map.json in Code.org's exact format."
        ),
    )
    gen.add_argument(
        "--catalog", type=Path, default=DEFAULT_CATALOG, help="catalog JSON (default: %(default)s)"
    )
    gen.add_argument(
        "--output-dir", type=Path, default=DEFAULT_OUTPUT_DIR, help="where the maps go (default: %(default)s)"
    )
    gen.add_argument(
        "--model",
        default=PRODUCTION_EMBEDDING_MODEL,
        help="embedding model: bedrock.amazon.titan-embed-text-v1 (default, what Code.org used; "
        "Code.org's bare id amazon.titan-embed-text-v1 is accepted too), "
        "bedrock.amazon.titan-embed-text-v2:0, text-embedding-3-small (OpenAI), local (offline MiniLM)",
    )
    gen.add_argument(
        "--cache", type=Path, default=None, help=f"embedding cache file (default: {default_cache_path()})"
    )
    gen.add_argument(
        "--import-pickle-cache",
        type=Path,
        metavar="PATH",
        help="import a legacy {(text, model): [floats]} pickle into the cache (safely, once)",
    )
    gen.add_argument(
        "--dry-run", action="store_true", help="list texts to embed with tokens and cost; send nothing"
    )
    gen.add_argument(
        "--max-new",
        type=_non_negative_int,
        metavar="N",
        help="refuse (exit 3, nothing sent or written) when more than N texts are not cached",
    )
    gen.add_argument(
        "--batch-size",
        type=_positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="texts per embed call (default: %(default)s)",
    )
    gen.add_argument(
        "--dimensions", type=_positive_int, help="output dimensions (Titan v2, text-embedding-3-*)"
    )
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")

    prev = sub.add_parser(
        "preview",
        help="show each output type's top 3 for three emojis",
        description="Apply the front end's rule to three emojis: sum their score vectors per output type, "
        f"show the top {TOP_OPTIONS} with summed scores, and one pick among them.",
    )
    prev.add_argument("emojis", nargs=3, metavar="EMOJI", help="emoji id, e.g. smiling-face-with-hearts")
    prev.add_argument(
        "--maps-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="folder with the maps (default: %(default)s)",
    )
    prev.add_argument("--seed", type=int, help="seed for the pick (default: random)")
    prev.add_argument("--bad", action="store_true", help=f"show the bottom {BOTTOM_OPTIONS} and a 'bad' pick")
    prev.add_argument("--json", action="store_true", help="print JSON instead of text")

    dif = sub.add_parser(
        "diff",
        help="compare two map folders over every emoji triple",
        description=f"For every triple of the emojis both maps share (25 emojis: 2300 triples), compare the "
        f"top-{TOP_OPTIONS} sets per output type and list the biggest movers. Exit 0: no type changed "
        "more than --fail-on; 1: changes found (or a map is in one folder only); 2: error.",
    )
    dif.add_argument("old_dir", type=Path, metavar="OLD_DIR")
    dif.add_argument("new_dir", type=Path, metavar="NEW_DIR")
    dif.add_argument("--json", action="store_true", help="print JSON instead of text")
    dif.add_argument(
        "--fail-on",
        type=_fraction,
        default=0.0,
        metavar="FRACTION",
        help="exit 1 only when some type's changed fraction exceeds this (default 0: any change)",
    )
    dif.add_argument("--movers", type=_non_negative_int, default=10, help="movers to list per type")
    dif.add_argument("--examples", type=_non_negative_int, default=5, help="changed triples to show per type")
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    gateway: Gateway | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=err)
    try:
        if args.command == "generate":
            if gateway is None:
                gateway = Gateway(load_settings())
            options = GenerateOptions(
                catalog=args.catalog,
                output_dir=args.output_dir,
                model=args.model,
                cache=args.cache,
                import_pickle_cache=args.import_pickle_cache,
                dry_run=args.dry_run,
                max_new=args.max_new,
                batch_size=args.batch_size,
                dimensions=args.dimensions,
                progress=not args.no_progress,
            )
            generate(options, gateway, out=out, err=err)
            return EXIT_OK
        if args.command == "preview":
            rng = random.Random(args.seed)  # noqa: S311 - mirrors Math.random, not crypto
            quality: Quality = "bad" if args.bad else "good"
            if args.json:
                result = preview(args.maps_dir, args.emojis, rng, quality, out=io.StringIO())
                print(json.dumps({"emojis": args.emojis, "types": result}, indent=2), file=out)
            else:
                preview(args.maps_dir, args.emojis, rng, quality, out=out)
            return EXIT_OK
        diffs, only_old, only_new = diff_dirs(
            args.old_dir, args.new_dir, movers=args.movers, examples=args.examples
        )
        changed = bool(only_old or only_new) or any(d.changed_fraction > args.fail_on for d in diffs)
        code = EXIT_CHANGED if changed else EXIT_OK
        if args.json:
            doc = {
                "types": [d.as_dict() for d in diffs],
                "only_old": only_old,
                "only_new": only_new,
                "fail_on": args.fail_on,
                "changed": changed,
                "exit_code": code,
            }
            print(json.dumps(doc, indent=2), file=out)
        else:
            print_diff(diffs, only_old, only_new, out)
        return code
    except SettingsError as exc:
        print(f"{PROG}: {exc}", file=err)
        return EXIT_ERROR
    except AIProxyError as exc:
        if isinstance(exc, InvalidRequestError) and exc.field == "max_new":
            print(f"{PROG}: refused: {exc}", file=err)
            return EXIT_REFUSED
        print(f"{PROG}: error ({exc.kind}): {exc}", file=err)
        return EXIT_ERROR
    except OSError as exc:
        print(f"{PROG}: error: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=err)
        return 130


if __name__ == "__main__":
    sys.exit(main())
