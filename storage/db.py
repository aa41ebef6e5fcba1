"""Engines, sessions and schema migrations.

SQLite gets WAL (readers never block the writer), enforced foreign keys and a
busy timeout on every connection (30 s, or the URL's ``?timeout=<seconds>``),
so the scheduler, the bot and a CLI command can share one file. PostgreSQL is
used as its URL says. Errors never carry row values (``hide_parameters``);
:func:`storage.errors.database_error` turns them into one line.

The schema is owned by Alembic (``storage/migrations``); :func:`upgrade` runs
it programmatically so ``vigil db upgrade`` needs no ``alembic.ini``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.config import mask_url_password
from core.errors import ConfigError, StorageError
from storage.errors import database_error

__all__ = ["make_engine", "make_sessionmaker", "open_database", "session_scope", "upgrade"]

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_pragmas(busy_timeout_ms: int | None) -> Any:
    def apply(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        if busy_timeout_ms is not None:  # else sqlite3.connect(timeout=...) from the URL already set it
            cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return apply


def _plain(url: str | SecretStr) -> str:
    """The URL itself: the config keeps it as a secret (it may hold a password)."""
    return url.get_secret_value() if isinstance(url, SecretStr) else url


def make_engine(url: str | SecretStr, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with vigil's per-dialect settings applied.

    ``hide_parameters``: an error never carries the row values of the statement that failed.
    """
    url = _plain(url)
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: not a database URL: {mask_url_password(url)!r}") from None
    if parsed.get_backend_name() == "sqlite":
        db = parsed.database
        if db and db != ":memory:":
            Path(db).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, hide_parameters=True)
        busy = None if "timeout" in parsed.query else SQLITE_BUSY_TIMEOUT_MS
        event.listen(engine, "connect", _sqlite_pragmas(busy))
        return engine
    try:
        return create_engine(parsed, echo=echo, pool_pre_ping=True, hide_parameters=True)
    except ModuleNotFoundError as err:
        raise ConfigError(f"database.url: driver for {parsed.drivername!r} is not installed ({err.name})") from None


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session in a transaction: committed on success, rolled back on error."""
    with factory.begin() as session:
        yield session


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to ``revision``. Safe to run again: it does nothing then.

    Returns the revision the database is at afterwards.
    """
    from alembic import command
    from alembic.runtime.migration import MigrationContext

    cfg = _alembic_config(engine)
    try:
        command.upgrade(cfg, revision)
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except OperationalError as err:
        where = engine.url.render_as_string(hide_password=True)
        raise StorageError(f"cannot migrate {where}: {database_error(err)}") from None


def open_database(
    url: str | SecretStr, *, migrate: bool = True, echo: bool = False
) -> tuple[Engine, sessionmaker[Session]]:
    """Engine and session factory for ``url``, migrated to head unless told not to."""
    engine = make_engine(url, echo=echo)
    if migrate:
        upgrade(engine)
    elif not inspect(engine).has_table("alembic_version"):
        raise StorageError("database has no schema: run 'vigil db upgrade' first")
    return engine, make_sessionmaker(engine)
