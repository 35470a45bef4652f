"""lib/store: migrations on a real SQLite file and a real PostgreSQL server, under a lock, atomic."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from lib.store import (
    Store,
    assessment_schema,  # noqa: F401 - registers its tables on the shared metadata
    retrieval_schema,  # noqa: F401 - registers its tables on the shared metadata
)
from lib.store.db import MIGRATIONS
from lib.store.schema import metadata
from tests.conftest import make_settings


def test_migrate_builds_exactly_the_schema(database_url: str) -> None:
    store = Store(database_url)
    assert store.current() is None
    newest = sorted(p.name for p in (MIGRATIONS / "versions").glob("[0-9]*.py"))[-1][:4]
    assert store.migrate() == store.head() == newest  # every shipped migration applied
    assert store.current() == newest
    inspector = sa.inspect(store.engine)
    for table in metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    assert store.migrate() == newest  # idempotent
    store.dispose()


def test_sqlite_default_is_a_wal_file_under_data_dir(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path / "nested" / "data")
    store = Store.from_settings(settings)
    store.migrate()
    assert (tmp_path / "nested" / "data" / "aiproxy.db").is_file()
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert "aiproxy.db" in store.describe()
    store.dispose()


def test_describe_hides_the_password() -> None:
    store = Store("postgresql+psycopg://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in store.describe()
    assert store.dialect == "postgresql"


def test_concurrent_migrations_apply_once(database_url: str) -> None:
    """Several workers starting together: the lock makes one migrate and the others see head."""
    errors: list[BaseException] = []
    results: list[str | None] = []

    def run() -> None:
        try:
            results.append(Store(database_url).migrate())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [Store(database_url).head()] * 4


def test_a_failing_migration_leaves_nothing_behind(database_url: str, tmp_path: Path) -> None:
    """Every shipped migration then a broken one in one run: all roll back, the database stays empty."""
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    head = Store(database_url).head()
    (scripts / "versions" / "9999_broken.py").write_text(
        '"""Broken on purpose."""\n'
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        'revision = "9999"\n'
        f'down_revision = "{head}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade() -> None:\n"
        '    op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.execute("SELECT * FROM no_such_table")\n'
    )
    store = Store(database_url, migrations=scripts)
    with pytest.raises(sa.exc.DBAPIError):
        store.migrate()
    assert sa.inspect(store.engine).get_table_names() == []
    assert store.current() is None
    store.dispose()
