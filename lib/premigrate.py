"""Migrate once in the gunicorn master, before any worker starts, so workers never import Alembic.

Why: Alembic (with Mako and Pygments) costs each worker about 12 MB that it needs only for the
start-up migration.  The master (``on_starting`` in src/gunicorn_conf.py) runs the migration in a
short-lived child process (``python -m lib.premigrate``), so neither the master nor the
workers it forks load Alembic or SQLAlchemy for it.  The child prints a marker naming the database,
migrations folder and head it brought up to date; the master puts it in the environment the
workers inherit, and ``Store.migrate`` in a worker returns at once when the marker matches.

Nothing changes when the child fails (database down at start, timeout): no marker is set and each
worker migrates as before, retrying in the background until the database is reachable.

This module imports nothing heavy at module level: the master imports it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys

log = logging.getLogger(__name__)

#: The environment variable the master sets for its workers after a successful migration.
MARKER_ENV = "AIPROXY_MIGRATED_BY_MASTER"
#: The child waits up to 30 s on a locked SQLite file or a slow PostgreSQL: give it some more.
CHILD_TIMEOUT_SECONDS = 60.0


def marker(url: str, migrations: str, head: str | None) -> str:
    """``head@digest`` where the digest names the database and migrations folder (never the URL
    itself: it may hold a password)."""
    digest = hashlib.sha256(f"{url}\0{migrations}".encode()).hexdigest()[:32]
    return f"{head or ''}@{digest}"


def premigrated_head(url: str, migrations: str) -> str | None:
    """The head the master migrated this database to, or None when it did not (or the marker names
    another database or migrations folder)."""
    head = os.environ.get(MARKER_ENV, "").partition("@")[0]
    if not head or os.environ[MARKER_ENV] != marker(url, migrations, head):
        return None
    return head


def run_in_child(root: str) -> bool:
    """Master side: migrate in a child process (same settings, same working directory; ``root`` is
    the checkout holding lib/) and, on success, hand the marker to the workers."""
    os.environ.pop(MARKER_ENV, None)  # a re-executed master (USR2) must not trust its parent's marker
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lib.premigrate"],
            env={**os.environ, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning(
            "start-up migration in the master failed: workers migrate", extra={"error": type(exc).__name__}
        )
        return False
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        # The traceback's last line starts with the exception's type; its message may quote the
        # database URL, so only the type is logged.
        last = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        log.warning(
            "start-up migration in the master failed: workers migrate", extra={"error": last.split(":")[0]}
        )
        return False
    os.environ[MARKER_ENV] = lines[-1]
    return True


def main() -> int:
    """Child side: migrate the configured database, print the marker on the last line."""
    from lib.settings import load_settings
    from lib.store.db import Store

    store = Store.from_settings(load_settings())
    head = store.migrate()
    print(marker(store.url, str(store.migrations), head))
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a child process, covered by its tests
    sys.exit(main())
