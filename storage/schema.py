"""Does the database's schema match what its revision promises? Repair what is safe, say how for the rest.

Alembic records a revision, not the tables: a table dropped by hand (or a
half-restored backup) leaves ``alembic_version`` at head while every query
on that table fails. :func:`repair_schema` compares the models
(``storage.models.Base.metadata``) with the inspected database through
Alembic's own comparison (``alembic.autogenerate.compare_metadata``, the one
autogenerate uses), creates what is missing and can be created without
touching data (tables, indexes), and names what cannot (a missing column, a
changed type or constraint) with the way out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

__all__ = ["SchemaReport", "repair_schema", "schema_differences", "unrepaired_message"]

log = logging.getLogger(__name__)

_HOW = (
    "it cannot be repaired without touching data: back up the database, export what you need "
    "(vigil export-candles), delete it and run 'vigil db upgrade' to start from an empty schema"
)


@dataclass
class SchemaReport:
    """What :func:`repair_schema` did (``repaired``), could not do (``unrepaired``) and left alone (``extra``)."""

    repaired: list[str] = field(default_factory=list)
    unrepaired: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unrepaired


def schema_differences(engine: Engine) -> list[Any]:
    """Alembic's list of differences between the models and the database (empty when they match)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), Base.metadata))


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    """Column modifications come as lists of tuples; everything else as one tuple."""
    out: list[tuple[Any, ...]] = []
    for diff in diffs:
        out.extend(diff if isinstance(diff, list) else [diff])
    return out


def _describe(diff: tuple[Any, ...]) -> str:
    kind = diff[0]
    if kind == "add_column":
        return f"column {diff[2]}.{diff[3].name} is missing"
    if kind in ("remove_column",):
        return f"column {diff[2]}.{diff[3].name} is not in the models"
    if kind.startswith("modify_"):
        return f"column {diff[2]}.{diff[3]} differs from the models ({kind.removeprefix('modify_')})"
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        obj = diff[1]
        table = getattr(getattr(obj, "table", None), "name", "?")
        verb = "is missing" if kind.startswith("add") else "is not in the models"
        return f"constraint {obj.name or '(unnamed)'} on {table} {verb}"
    if kind == "remove_table":
        return f"table {diff[1].name} is not in the models"
    if kind == "remove_index":
        return f"index {diff[1].name} is not in the models"
    return " ".join(str(p) for p in diff[:2])


def repair_schema(engine: Engine) -> SchemaReport:
    """Create missing tables and indexes; report everything else. Safe to repeat."""
    report = SchemaReport()
    diffs = _flatten(schema_differences(engine))
    tables = [d[1] for d in diffs if d[0] == "add_table"]
    if tables:
        from storage.models import Base

        Base.metadata.create_all(engine, tables=tables)  # with their indexes and constraints
        report.repaired += [f"created table {t.name}" for t in tables]
        diffs = _flatten(schema_differences(engine))
    for diff in diffs:
        kind = diff[0]
        if kind == "add_index":
            diff[1].create(engine)
            report.repaired.append(f"created index {diff[1].name} on {diff[1].table.name}")
        elif kind in ("remove_table", "remove_index", "remove_column", "remove_constraint", "remove_fk"):
            report.extra.append(_describe(diff))
        else:
            report.unrepaired.append(_describe(diff))
    for line in report.repaired:
        log.warning("schema repaired: %s", line)
    return report


def unrepaired_message(report: SchemaReport) -> str:
    """One line naming what could not be repaired and how to get out."""
    return f"the schema does not match its revision: {'; '.join(report.unrepaired)}; {_HOW}"
