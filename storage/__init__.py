"""Storage: SQLAlchemy 2.0 models, Alembic migrations and the repository functions; all SQL lives here.

Repository functions take the session first and never commit; the caller owns
the transaction (``with factory.begin() as session``). The public face::

    from storage import open_database, session_scope
"""

from __future__ import annotations

from storage.db import make_engine, make_sessionmaker, open_database, session_scope, upgrade

__all__ = ["make_engine", "make_sessionmaker", "open_database", "session_scope", "upgrade"]
