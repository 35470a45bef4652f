"""The one database engine of a process, and migrations that are never half-applied.

Why these engine settings:

- SQLite (the embedded default, one file under ``DATA_DIR``): WAL so readers never wait for the
  ledger writer; a 30 s busy timeout so several gunicorn workers can share the file; and the driver's
  own transaction handling switched off so that ``BEGIN`` is ours -- pysqlite does not open a
  transaction before DDL, which would let a failing migration leave half a schema behind.
- PostgreSQL (``postgresql+psycopg://``, several replicas): transactional DDL; ``pool_pre_ping`` so
  a restarted database costs one reconnect, not an error.

``Store.migrate`` runs every pending Alembic migration inside one transaction that first takes the
migration lock (``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite): workers and
replicas starting together apply each migration once, and a failure rolls all of them back.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from lib.premigrate import premigrated_head
from lib.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

# Alembic is imported inside the methods that use it: a gunicorn worker whose master migrated
# already (lib/premigrate.py) never loads it.

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
#: Arbitrary constant naming aiproxy's migration lock among PostgreSQL advisory locks.
_PG_MIGRATION_LOCK = 0x41495058  # "AIPX"
_BEGIN_OPTION = "aiproxy_sqlite_begin"
#: (database URL, migrations folder) -> the head this process has brought it to already.
_MIGRATED: dict[tuple[str, str], str | None] = {}
#: The store of each database URL in this process (``Store.from_settings``).
_SHARED: dict[str, Store] = {}


def _sqlite_file(url: sa.URL) -> Path | None:
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def _set_wal(cur: Any) -> None:
    """Switch a new database file to WAL, waiting for the other connections that race to do the same.

    SQLite answers ``database is locked`` at once, without its busy handler, when another connection
    is switching the same new file into WAL (workers, replicas or threads opening it together), so
    the switch is retried here for up to the busy timeout."""
    deadline = time.monotonic() + 30
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def create_engine(url: str) -> sa.Engine:
    """An engine with the settings explained in the module docstring."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect_args: dict[str, Any] = {}
        if parsed.get_backend_name() == "postgresql":
            connect_args["connect_timeout"] = 5
        return sa.create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    path = _sqlite_file(parsed)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (see the module docstring)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA busy_timeout=30000")
        if path is not None:
            _set_wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(conn.get_execution_options().get(_BEGIN_OPTION, "BEGIN"))

    return engine


class Store:
    """The engine plus migrations.  Create once per process (``Store.from_settings``)."""

    def __init__(self, url: str, *, migrations: Path = MIGRATIONS) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.migrations = migrations

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """The process's one store for the configured database (apps and workers share its engine
        and connection pool instead of opening one per app)."""
        url = settings.effective_database_url
        store = _SHARED.get(url)
        if store is None:
            store = _SHARED[url] = cls(url)
        return store

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        """The URL without its password, for logs and the CLI."""
        return sa.make_url(self.url).render_as_string(hide_password=True)

    def _alembic(self, conn: sa.Connection) -> Config:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.migrations))
        cfg.attributes["connection"] = conn
        return cfg

    def head(self) -> str | None:
        """The newest migration shipped with this code."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory(str(self.migrations)).get_current_head()

    def current(self) -> str | None:
        """The migration the database is at (None: empty database)."""
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def migrate(self) -> str | None:
        """Apply every pending migration under the lock, all in one transaction; return the head."""
        done = (self.url, str(self.migrations))
        if done in _MIGRATED:  # this process already did (one app per test, workers re-creating apps)
            return _MIGRATED[done]
        premigrated = premigrated_head(*done)
        if premigrated is not None:  # the gunicorn master did, before forking this worker
            _MIGRATED[done] = premigrated
            return premigrated
        from alembic import command
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            conn.execution_options(**{_BEGIN_OPTION: "BEGIN IMMEDIATE"})
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                before = MigrationContext.configure(conn).get_current_revision()
                command.upgrade(self._alembic(conn), "head")
                after = MigrationContext.configure(conn).get_current_revision()
        _MIGRATED[done] = after
        if before != after:
            log.info("database migrated", extra={"from": before, "to": after, "database": self.describe()})
        return after

    def dispose(self) -> None:
        self.engine.dispose()
