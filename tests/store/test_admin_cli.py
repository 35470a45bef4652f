"""bin/aiproxy-admin (lib/admin.py) against SQLite and PostgreSQL: migrate, keys, usage."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from lib.admin import main
from lib.keys import KeyRepository
from lib.ledger import LedgerWriter
from lib.store import Store
from tests.store.test_ledger import row

SECRET = "cli-test-secret-0123456789abcdef"


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path) -> str:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KEY_HASH_SECRET", SECRET)
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    return database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_lifecycle(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "migrate")[0] == 0
    code, out, err = run(
        capsys, "keys", "create", "--name", "rubric-tester", "--scopes", "assessment",
        "--models", "gpt-4o*,bedrock.*", "--tier", "batch", "--rpm", "600", "--budget-usd", "200",
        "--expires", "2030-01-01", "--json",
    )  # fmt: skip
    assert code == 0, err
    made = json.loads(out)
    key = made["key"]
    assert made["tier"] == "batch" and made["models"] == ["gpt-4o*", "bedrock.*"]
    assert made["expires_at"] == "2030-01-01T00:00:00Z"
    repo = KeyRepository(Store(env), SECRET)
    assert repo.get(made["id"]).key_hash == repo.hash(key)

    code, out, _ = run(capsys, "keys", "list")
    assert code == 0 and made["id"] in out and key not in out and "rubric-tester" in out
    code, out, err = run(capsys, "keys", "rotate", made["id"])
    new = out.splitlines()[1]
    assert code == 0 and new.startswith("aip_") and new != key and "shown once" in err
    code, out, _ = run(capsys, "keys", "revoke", made["id"], "--json")
    assert code == 0 and json.loads(out)["status"] == "revoked"
    code, _, err = run(capsys, "keys", "revoke", "key_missing")
    assert code == 1 and "key_missing" in err
    code, _, err = run(capsys, "keys", "create", "--name", "x", "--scopes", "everything")
    assert code == 2 and "scopes" in err
    assert json.loads(run(capsys, "keys", "list", "--json")[1])[0]["status"] == "revoked"


def test_usage_by_key_model_day(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    store = Store(env)
    store.migrate()
    writer = LedgerWriter(store.engine)
    writer.record(row("key_a", "gpt-4o", datetime(2026, 12, 5, 10)))
    writer.record(row("key_a", "gpt-4o-mini", datetime(2026, 12, 6, 10)))
    writer.record(row("root", "gpt-4o", datetime(2026, 12, 6, 11)))
    writer.close()
    code, out, _ = run(capsys, "usage", "--by", "model", "--json")
    assert code == 0
    assert {r["model"]: r["calls"] for r in json.loads(out)["rows"]} == {"gpt-4o": 2, "gpt-4o-mini": 1}
    code, out, _ = run(capsys, "usage", "--by", "day", "--since", "2026-12-06")
    assert code == 0 and "2026-12-06" in out and "2026-12-05" not in out
    code, out, _ = run(capsys, "usage", "--key", "root", "--until", "2026-12-07T00:00:00+00:00")
    assert code == 0 and "root" in out and "key_a" not in out


def test_settings_and_secret_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("KEY_HASH_SECRET", raising=False)
    code, _, err = run(capsys, "keys", "list")
    assert code == 3 and "KEY_HASH_SECRET" in err
    monkeypatch.setenv("KEY_CACHE_REFRESH_SECONDS", "60")
    code, _, err = run(capsys, "migrate")
    assert code == 3 and "KEY_CACHE_REFRESH_SECONDS" in err
    monkeypatch.delenv("KEY_CACHE_REFRESH_SECONDS")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    code, _, err = run(capsys, "migrate")
    assert code == 1 and "127.0.0.1:1" in err
    with pytest.raises(SystemExit):
        main(["usage", "--since", "yesterday"])
