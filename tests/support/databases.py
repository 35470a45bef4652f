"""Real databases for tests: a throw-away SQLite file, or a fresh database on the PostgreSQL server
``bin/test.sh`` starts (``TEST_DATABASE_URL``).

Focused local runs without that server skip the PostgreSQL cases and say why; under ``bin/test.sh``
(``AIPROXY_REQUIRE_SERVERS=1``) a missing server fails the run instead, so CI cannot go green
without having tested PostgreSQL.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa


def require_server(variable: str, what: str) -> str:
    """The server URL in ``variable``; skip (focused run) or fail (bin/test.sh) when unset."""
    url = os.environ.get(variable, "")
    if url:
        return url
    message = f"{what}: {variable} is not set (bin/test.sh starts a real server and sets it)"
    if os.environ.get("AIPROXY_REQUIRE_SERVERS") == "1":
        pytest.fail(message + " -- but this run requires the servers")
    pytest.skip(message)


@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """CREATE DATABASE with a random name on the test server; dropped (forcibly) afterwards."""
    name = "aiproxy_test_" + secrets.token_hex(6)
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def database(kind: str, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database of ``kind`` (``sqlite`` or ``postgresql``)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'aiproxy.db'}"
        return
    with fresh_postgres_database(require_server("TEST_DATABASE_URL", "PostgreSQL")) as url:
        yield url
