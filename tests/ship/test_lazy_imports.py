"""Worker memory: what a gunicorn worker built with default settings must NOT import at start.

Each of these costs a worker megabytes it needs only when a feature is used (issue 12: the whole
service within 300 MB through a 1,000-call burst).  The probe does what a worker does: the master
migrates in a child process (lib/premigrate.py), then the worker builds the app and answers a health
check; the modules below must not be in ``sys.modules`` afterwards.  A new top-level import of one
of them fails this test instead of a benchmark.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from lib import premigrate
from lib.store import Store
from tests.ship import artefacts as a

#: Loaded only when their feature is used or configured.
DEFERRED = (
    "alembic",  # migrations: the master's child process runs them
    "mako",  # Alembic's templates
    "jwt",  # browser tokens: only with JWT_ISSUER
    "cryptography",
    "redis",  # only with REDIS_URL
    "boto3",  # Bedrock/SageMaker: first call to such a model
    "botocore",
    "usearch",  # retrieval index: first collections use
    "numpy",  # retrieval vectors and base64 embeddings: first use
    "esprima",  # comment removal and the code feature extractor: first assessment
    "llama_cpp",  # local model: first local call
)

WORKER = """
import json, sys
from lib.premigrate import run_in_child
if sys.argv[3] == "master":
    assert run_in_child(sys.argv[1]), "the master's migration failed"
from src.app import create_app
app = create_app()
assert app.test_client().get("/").status_code == 200
print(json.dumps(sorted(m for m in sys.modules if m.partition(".")[0] in json.loads(sys.argv[2]))))
"""


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "AIPROXY_ALLOW_UNAUTHENTICATED": "1",
        "AIPROXY_CONFIG_FILE": "/nonexistent/config.txt",
        "DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(a.ROOT),
        **extra,
    }
    for name in ("AIPROXY_API_KEY", "DATABASE_URL", "REDIS_URL", "JWT_ISSUER", premigrate.MARKER_ENV):
        if name not in extra:
            env.pop(name, None)
    return env


def _worker_imports(tmp_path: Path, migrated_by: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", WORKER, str(a.ROOT), json.dumps(DEFERRED), migrated_by],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    tables = sa.inspect(sa.create_engine(f"sqlite:///{tmp_path / 'aiproxy.db'}")).get_table_names()
    assert {"alembic_version", "api_keys"} <= set(tables), tables  # migrated, by the master or not
    return loaded


def test_a_worker_with_default_settings_does_not_import_feature_modules(tmp_path: Path) -> None:
    assert _worker_imports(tmp_path, "master") == []


def test_without_the_masters_migration_the_worker_migrates_itself(tmp_path: Path) -> None:
    """What the database-down-at-start path falls back to, and proof the probe sees Alembic."""
    loaded = _worker_imports(tmp_path, "worker")
    assert "alembic" in loaded and "mako" in loaded


def test_a_failed_master_migration_sets_no_marker_and_clears_a_stale_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(premigrate.MARKER_ENV, "0003@stale")
    blocker = tmp_path / "file"
    blocker.write_text("")  # a file where the database's folder should be: the child cannot migrate
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{blocker}/sub/aiproxy.db")
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    assert premigrate.run_in_child(str(a.ROOT)) is False
    assert premigrate.MARKER_ENV not in os.environ


def test_the_marker_only_matches_its_own_database_and_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(premigrate.MARKER_ENV, premigrate.marker("sqlite:///a.db", "/m", "0003"))
    assert premigrate.premigrated_head("sqlite:///a.db", "/m") == "0003"
    assert premigrate.premigrated_head("sqlite:///b.db", "/m") is None
    assert premigrate.premigrated_head("sqlite:///a.db", "/other") is None
    assert "a.db" not in os.environ[premigrate.MARKER_ENV]  # a URL (and its password) never leaks
    monkeypatch.setenv(premigrate.MARKER_ENV, premigrate.marker("sqlite:///a.db", "/m", None))
    assert premigrate.premigrated_head("sqlite:///a.db", "/m") is None


def test_a_worker_store_trusts_the_masters_marker_for_its_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv(premigrate.MARKER_ENV, "")  # so the marker run_in_child sets is undone after
    assert premigrate.run_in_child(str(a.ROOT)) is True
    store = Store(f"sqlite:///{tmp_path / 'aiproxy.db'}")
    assert store.migrate() == store.current() == store.head()  # the marker's head is the real one
    other = Store(f"sqlite:///{tmp_path / 'other.db'}")  # the marker does not name it: migrated here
    assert other.current() is None
    assert other.migrate() == store.head() == other.current()


def test_the_child_prints_the_marker_of_the_database_it_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AIPROXY_CONFIG_FILE", "/nonexistent/config.txt")
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'child.db'}")
    assert premigrate.main() == 0
    store = Store(f"sqlite:///{tmp_path / 'child.db'}")
    expected = premigrate.marker(store.url, str(store.migrations), store.current())
    assert capsys.readouterr().out.strip().splitlines()[-1] == expected
