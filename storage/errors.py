"""Database failures, said in one line that tells the user what to do.

SQLAlchemy's own message is the failed statement, its parameters (row
values) and a link, spread over many lines. :func:`database_error` keeps
only the driver's first line, recognises the failures a user can fix (a
database locked by another writer beyond the busy timeout, a read-only file,
a table missing because the schema was tampered with, an unreachable server)
and says how. Never the SQL, never a row value.
"""

from __future__ import annotations

import re

from core.errors import StorageError

__all__ = ["database_error"]

_MISSING_TABLE = re.compile(r'no such table: (\S+)|relation "([^"]+)" does not exist', re.I)
_MISSING_COLUMN = re.compile(r'no such column: (\S+)|column "([^"]+)" (?:of relation "[^"]+" )?does not exist', re.I)

_KNOWN: list[tuple[tuple[str, ...], str]] = [
    (
        ("database is locked", "database table is locked", "could not obtain lock", "lock timeout"),
        "the database is locked by another process beyond the busy timeout: stop the other writer "
        "(another 'vigil run' or an open SQLite shell) or try again",
    ),
    (
        ("readonly database", "read-only", "read only"),
        "the database is read-only: check the permissions of the database file and its folder "
        "(SQLite writes a journal beside it) or the URL's mode",
    ),
    (
        ("unable to open database file",),
        "cannot open the database file: check that its folder exists and is writable",
    ),
    (("file is not a database", "file is encrypted"), "the database file is not an SQLite database"),
    (("database or disk is full", "no space left"), "the disk holding the database is full"),
    (("disk i/o error",), "the database file could not be read or written (disk I/O error)"),
    (
        ("connection refused", "could not connect", "connection failed", "could not translate host name"),
        "cannot connect to the database server: check database.url and that the server is running",
    ),
    (("password authentication failed",), "the database server refused the credentials in database.url"),
]


def _driver_message(exc: BaseException) -> str:
    """The DBAPI's own first line (no SQL, no parameters, no DETAIL with row values)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def database_error(exc: BaseException) -> StorageError:
    """A one-line :class:`~core.errors.StorageError` for a SQLAlchemy/DBAPI exception."""
    message = _driver_message(exc)
    low = message.lower()
    table = _MISSING_TABLE.search(message)
    if table:
        name = table.group(1) or table.group(2)
        return StorageError(f"table {name!r} is missing from the database: run 'vigil db upgrade' to repair the schema")
    column = _MISSING_COLUMN.search(message)
    if column:
        name = column.group(1) or column.group(2)
        return StorageError(f"column {name!r} is missing from the database: run 'vigil db upgrade' to repair it")
    for needles, advice in _KNOWN:
        if any(n in low for n in needles):
            return StorageError(advice)
    kind = type(exc).__name__
    if kind == "IntegrityError":
        return StorageError(f"the database refused a write that breaks one of its constraints ({message})")
    return StorageError(f"database error ({kind}): {message}")
