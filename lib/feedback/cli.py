"""``aiproxy-admin feedback|records|dataset ...``: the teacher-feedback commands of the admin CLI.

    aiproxy-admin feedback import FILE.csv
    aiproxy-admin feedback report [--lesson L] [--since D] [--html OUT.html] [--json]
    aiproxy-admin records purge [--days N]            (default: RECORD_RETENTION_DAYS)
    aiproxy-admin dataset build --lesson L [--since D] --out datasets/<name>/ [--upload]
    aiproxy-admin dataset export-finetune --format openai|bedrock-claude|bedrock-nova --lesson L
                                          [--since D] --out DIR [--validation-percent 10]

``lib/admin.py`` (the CLI's entry point) adds these parsers with ``register`` and hands the parsed
arguments to ``run`` when ``args.command`` is one of ``COMMANDS``.  Exit status as the rest of the
CLI: 0 done, 1 refused (some feedback rows, a database error), 2 bad arguments, 3 bad settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from lib.assessment.tester.options import IDENTIFIER_RULE, is_identifier
from lib.assessment.tester.s3 import S3Store
from lib.errors import AIProxyError, InvalidRequestError
from lib.feedback.accuracy import render_report, summary
from lib.feedback.dataset import build_dataset
from lib.feedback.finetune import FORMATS, export_finetune
from lib.feedback.importer import import_csv
from lib.feedback.records import parse_since
from lib.feedback.retention import delete_expired
from lib.fileio import atomic_write_text
from lib.settings import Settings
from lib.store import Store

COMMANDS = frozenset({"feedback", "records", "dataset"})


def since_arg(text: str) -> datetime:
    try:
        return parse_since(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: Any) -> None:
    """Add the ``feedback``, ``records`` and ``dataset`` parsers to the CLI's subparsers."""
    feedback = sub.add_parser("feedback", help="teacher feedback").add_subparsers(
        dest="action", required=True
    )
    imp = feedback.add_parser("import", help="import feedback exported from the web app (CSV)")
    imp.add_argument("file", type=Path)
    report = feedback.add_parser("report", help="production accuracy: AI vs teacher labels")
    _window(report, lesson_required=False)
    report.add_argument("--html", type=Path, help="also write the self-contained HTML report here")
    report.add_argument("--json", action="store_true", help="print the summary as JSON")

    dataset = sub.add_parser("dataset", help="datasets from records").add_subparsers(
        dest="action", required=True
    )
    build = dataset.add_parser(
        "build", help="a rubric-tester dataset from records with code and teacher labels"
    )
    _window(build, lesson_required=True)
    build.add_argument("--out", type=Path, required=True, help="the dataset folder, e.g. datasets/<name>/")
    build.add_argument(
        "--upload", action="store_true", help="also upload it to the rubric tester's S3 layout"
    )

    tune = dataset.add_parser("export-finetune", help="train/validation JSONL for fine-tuning")
    tune.add_argument("--format", required=True, choices=FORMATS)
    _window(tune, lesson_required=False)
    tune.add_argument("--out", type=Path, required=True, help="folder for train.jsonl and validation.jsonl")
    tune.add_argument("--validation-percent", type=int, default=10, choices=range(0, 51), metavar="0-50")
    tune.add_argument("--base-model", help="model whose training price is used (default per format)")
    tune.add_argument("--epochs", type=int, default=3)

    records = sub.add_parser("records", help="assessment records").add_subparsers(
        dest="action", required=True
    )
    purge = records.add_parser("purge", help="delete records (and their feedback) older than N days")
    purge.add_argument("--days", type=int, help="default: RECORD_RETENTION_DAYS")


def _window(parser: argparse.ArgumentParser, *, lesson_required: bool) -> None:
    parser.add_argument("--lesson", required=lesson_required, help="only this lesson")
    parser.add_argument("--since", type=since_arg, help="only assessments from this UTC date/time")


def _import(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"aiproxy-admin: {args.file}: {exc}", file=sys.stderr)
        return 2
    result = import_csv(store.engine, text, store_code=settings.store_student_code)
    print(
        f"{result.submissions} submissions: {result.created} key concepts stored, "
        f"{result.unchanged} already stored, {len(result.refused)} submissions refused"
    )
    for line in result.refused:
        print(f"  refused {line}", file=sys.stderr)
    return 1 if result.refused else 0


def _report(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    result = summary(store.engine, lesson=args.lesson, since=args.since)
    if args.html is not None:
        atomic_write_text(args.html, render_report(result))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{result['pairs']} key concepts judged on {result['assessments_with_feedback']} assessments")
    for lesson, ls in result["statistics"]["lessons"].items():
        for kc, m in [*ls["key_concepts"].items(), ("(all)", ls["overall"])]:
            print(
                f"{lesson}  {kc}  n={m['n']}  {_ratio(m['exact'])} exact  {_ratio(m['pass_fail'])} pass/fail"
            )
    if args.html is not None:
        print(f"report: {args.html}")
    return 0


def _ratio(r: dict[str, Any]) -> str:
    if r["rate"] is None:
        return "—"
    low, high = r["ci95"]
    return f"{r['rate'] * 100:.1f}% [{low * 100:.1f}-{high * 100:.1f}]"


def _purge(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    days = args.days if args.days is not None else settings.record_retention_days
    if days is None or days < 1:
        print("aiproxy-admin: give --days N (N >= 1) or set RECORD_RETENTION_DAYS", file=sys.stderr)
        return 2
    records, feedback = delete_expired(store.engine, days)
    print(f"deleted {records} records and {feedback} feedback rows older than {days} days")
    return 0


def _build(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    if not is_identifier(args.out.name):
        print(
            f"aiproxy-admin: the dataset name {args.out.name!r} is not a name ({IDENTIFIER_RULE})",
            file=sys.stderr,
        )
        return 2
    manifest = build_dataset(store.engine, lesson=args.lesson, since=args.since, out=args.out)
    counts = manifest["counts"]
    print(f"{args.out}: {counts['students']} students, version {manifest['version'][:16]}")
    print(
        "  left out: "
        + ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("students", "records_with_code"))
    )
    if args.upload:
        s3 = S3Store(settings.rubric_tester_s3_bucket, settings.rubric_tester_s3_prefix)
        rel = f"datasets/{args.out.name}"
        uploaded = s3.upload_folder(args.out, rel)
        print(f"  uploaded {uploaded} files to {s3.url(rel)}")
    return 0


def _export(args: argparse.Namespace, store: Store, _settings: Settings) -> int:
    result = export_finetune(
        store.engine,
        fmt=args.format,
        out=args.out,
        lesson=args.lesson,
        since=args.since,
        validation_percent=args.validation_percent,
        base_model=args.base_model,
        epochs=args.epochs,
    )
    print(f"{args.out}/train.jsonl: {result.train} rows, {result.train_tokens:,} tokens")
    print(f"{args.out}/validation.jsonl: {result.validation} rows, {result.validation_tokens:,} tokens")
    cost = (
        "unknown (no training price in the registry)"
        if result.cost_usd is None
        else f"${result.cost_usd:.4f}"
    )
    print(f"estimated training cost on {result.base_model}, {args.epochs} epochs: {cost}")
    print(
        "  left out: " + ", ".join(f"{k} {v}" for k, v in result.left_out.items() if k != "records_with_code")
    )
    return 0


Handler = Callable[[argparse.Namespace, Store, Settings], int]
_HANDLERS: dict[tuple[str, str], Handler] = {
    ("feedback", "import"): _import,
    ("feedback", "report"): _report,
    ("records", "purge"): _purge,
    ("dataset", "build"): _build,
    ("dataset", "export-finetune"): _export,
}


def run(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    try:
        return _HANDLERS[(args.command, args.action)](args, store, settings)
    except InvalidRequestError as exc:
        print(f"aiproxy-admin: {exc}", file=sys.stderr)
        return 2
    except AIProxyError as exc:  # S3 unreachable or refusing
        print(f"aiproxy-admin: {exc}", file=sys.stderr)
        return 1
