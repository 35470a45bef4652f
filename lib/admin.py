"""``bin/aiproxy-admin``: the database, virtual keys and usage from a shell.

    aiproxy-admin migrate
    aiproxy-admin keys create --name rubric-tester --scopes assessment --rpm 600 --budget-usd 200
    aiproxy-admin keys list | revoke KEY_ID | rotate KEY_ID
    aiproxy-admin usage --by key|model|day [--since 2026-12-01] [--until ...] [--key KEY_ID]
    aiproxy-admin feedback import FILE.csv | report; records purge; dataset build | export-finetune
                  (teacher feedback, datasets and fine-tuning: lib/feedback/cli.py)

It reads the same settings as the service (environment, then ``config.txt``): ``DATABASE_URL`` or
``DATA_DIR``, and ``KEY_HASH_SECRET`` for keys.  It validates keys exactly as ``POST /admin/keys``
does (``lib.keys.KeySpec``).  A new or rotated key is printed once, on stdout, and never logged.
Exit status: 0 done, 1 refused (unknown key, database error), 2 bad arguments, 3 bad settings.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from lib.errors import AIProxyError
from lib.feedback import cli as feedback_cli
from lib.keys import SCOPES, KeyRecord, KeyRepository, KeySpec
from lib.ledger import usage_report
from lib.settings import Settings, SettingsError, load_settings
from lib.store import Store


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiproxy-admin", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations (the service also does at start)")

    keys = sub.add_parser("keys", help="virtual API keys").add_subparsers(dest="action", required=True)
    create = keys.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument("--owner", default="")
    create.add_argument("--scopes", required=True, help=f"comma-separated: {', '.join(SCOPES)}")
    create.add_argument("--models", default="", help="comma-separated allow-list (patterns like gpt-4o*)")
    create.add_argument("--tier", default="interactive", help="interactive or batch")
    create.add_argument("--expires", help="UTC expiry, ISO 8601 (e.g. 2027-06-30 or 2027-06-30T12:00Z)")
    create.add_argument("--rpm", type=int)
    create.add_argument("--tpm", type=int)
    create.add_argument("--concurrency", type=int)
    create.add_argument("--budget-usd", type=float, help="monthly budget in USD")
    create.add_argument("--json", action="store_true", help="print the key and its settings as JSON")
    listing = keys.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    for action in ("revoke", "rotate"):
        p = keys.add_parser(action, help=f"{action} a key by id")
        p.add_argument("key_id")
        p.add_argument("--json", action="store_true")

    usage = sub.add_parser("usage", help="usage from the ledger")
    usage.add_argument("--by", choices=["key", "model", "day"], default="key")
    usage.add_argument("--since", type=_when, help="from this UTC date/time (inclusive)")
    usage.add_argument("--until", type=_when, help="before this UTC date/time (exclusive)")
    usage.add_argument("--key", help="only this key id")
    usage.add_argument("--json", action="store_true")
    feedback_cli.register(sub)  # feedback import|report, records purge, dataset build|export-finetune
    return parser


def _when(text: str) -> datetime:
    """A UTC date (its midnight) or an ISO 8601 time, as naive UTC: the feedback commands' parsing."""
    return feedback_cli.since_arg(text)


def _spec(args: argparse.Namespace) -> KeySpec:
    values: dict[str, Any] = {
        "name": args.name,
        "owner": args.owner,
        "scopes": [s.strip() for s in args.scopes.split(",") if s.strip()],
        "models": [m.strip() for m in args.models.split(",") if m.strip()],
        "tier": args.tier,
        "expires_at": args.expires,
        "rpm": args.rpm,
        "tpm": args.tpm,
        "max_concurrent": args.concurrency,
        "monthly_budget_usd": args.budget_usd,
    }
    return KeySpec.model_validate({k: v for k, v in values.items() if v is not None})


def _print_key(record: KeyRecord, plaintext: str | None, as_json: bool) -> None:
    if as_json:
        out = record.public()
        if plaintext is not None:
            out["key"] = plaintext
        print(json.dumps(out, indent=2))
        return
    print(f"{record.id}  {record.name}  [{','.join(sorted(record.scopes))}]  {record.status()}")
    if plaintext is not None:
        print(plaintext)
        print("(shown once: store it now; only a keyed hash is kept)", file=sys.stderr)


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _keys(args: argparse.Namespace, store: Store, settings: Settings) -> int:
    if settings.key_hash_secret is None:
        print("aiproxy-admin: KEY_HASH_SECRET is not set: virtual keys are off", file=sys.stderr)
        return 3
    repo = KeyRepository(store, settings.key_hash_secret.get_secret_value())
    if args.action == "create":
        record, plaintext = repo.create(_spec(args))
        _print_key(record, plaintext, args.json)
    elif args.action == "list":
        records = [r.public() for r in repo.all()]
        if args.json:
            print(json.dumps(records, indent=2))
        else:
            for r in records:
                r["scopes"] = ",".join(r["scopes"])
            cols = ("id", "name", "owner", "key_prefix", "scopes", "status", "rpm", "monthly_budget_usd")
            print(_table(records, cols))
    elif args.action == "revoke":
        _print_key(repo.revoke(args.key_id), None, args.json)
    else:
        record, plaintext = repo.rotate(args.key_id)
        _print_key(record, plaintext, args.json)
    return 0


def _usage(args: argparse.Namespace, store: Store) -> int:
    rows = usage_report(store.engine, args.by, since=args.since, until=args.until, key_id=args.key)
    if args.json:
        print(json.dumps({"by": args.by, "rows": rows}, indent=2))
        return 0
    cols = [args.by] + (["name"] if args.by == "key" else [])
    print(_table(rows, [*cols, "calls", "errors", "prompt_tokens", "completion_tokens", "cost_usd"]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"aiproxy-admin: {exc}", file=sys.stderr)
        return 3
    store = Store.from_settings(settings)
    try:
        store.migrate()
        if args.command == "migrate":
            print(f"{store.describe()}: at migration {store.current()}")
            return 0
        if args.command == "keys":
            return _keys(args, store, settings)
        if args.command in feedback_cli.COMMANDS:
            return feedback_cli.run(args, store, settings)
        return _usage(args, store)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"aiproxy-admin: invalid key: {problems}", file=sys.stderr)
        return 2
    except AIProxyError as exc:
        print(f"aiproxy-admin: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - database errors: say which database, not a traceback
        print(f"aiproxy-admin: {store.describe()}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        store.dispose()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
