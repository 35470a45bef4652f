"""Alembic environment: always runs on the connection ``lib.store.db.Store.migrate`` opened.

That connection is already inside one transaction holding the migration lock, so every pending
migration commits together or not at all (never half-applied).
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
