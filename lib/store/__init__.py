"""Storage shared by virtual keys, the usage ledger and later features (feedback, retrieval).

SQLAlchemy 2 Core over SQLite (embedded default, no server) or PostgreSQL (``DATABASE_URL``), with
Alembic migrations applied at start-up under a lock.  See ``lib/store/db.py``.
"""

from lib.store.db import Store, create_engine

__all__ = ["Store", "create_engine"]
