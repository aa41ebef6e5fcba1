"""Issue 17, failure 5 (database part): locked, read-only and tampered databases give one line saying what to do.

Through the real CLI (typer's runner, so the same guard as ``vigil``), on
SQLite files: a second connection holding the write lock, a read-only open
(``mode=ro``, as a file without write permission behaves; the tests run as
root, which ignores file modes) and a table dropped behind Alembic's back.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect
from typer.testing import CliRunner

from bot.cli.root import app
from storage.candles import load_candles
from storage.db import make_engine, open_database, upgrade
from storage.schema import repair_schema, schema_differences

runner = CliRunner()

CSV = "timestamp_ms,open,high,low,close,volume\n1704067200000,100,101,99,100.5,10\n1704070800000,100.5,102,100,101.5,12\n"


def _import(csv: Path, url: str) -> object:
    args = ["import-candles", str(csv), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    return runner.invoke(app, [*args, "--db", url])


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert "Traceback" not in output and "[SQL:" not in output and "INSERT" not in output
    return lines[0]


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    return path


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "v.db"
    open_database(f"sqlite:///{path}")
    return path


def test_database_locked_beyond_busy_timeout_is_one_line(csv: Path, db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another writer that does not let go
    try:
        r = _import(csv, f"sqlite:///{db}?timeout=0.2")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.exit_code == 1
    line = _one_line(r.output)
    assert "database is locked by another process" in line and "1704067200000" not in line


def test_read_only_database_is_one_line_and_writes_nothing(csv: Path, db: Path) -> None:
    r = _import(csv, f"sqlite:///file:{db}?mode=ro&uri=true")
    assert r.exit_code == 1
    assert "the database is read-only" in _one_line(r.output)
    _engine, factory = open_database(f"sqlite:///{db}")
    with factory() as s:
        assert load_candles(s, "binance", "BTC/USDT", "1h").empty


def test_dropped_table_is_named_and_db_upgrade_repairs_it(csv: Path, db: Path) -> None:
    url = f"sqlite:///{db}"
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE candles")
    r = _import(csv, url)
    assert r.exit_code == 1
    assert "table 'candles' is missing" in _one_line(r.output) and "vigil db upgrade" in r.output

    r = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert r.exit_code == 0, r.output
    assert "repaired: created table candles" in r.output
    assert schema_differences(make_engine(url)) == []
    assert _import(csv, url).exit_code == 0
    again = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert "repaired" not in again.output  # nothing left to repair


def test_dropped_index_is_recreated(db: Path) -> None:
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    name = next(ix["name"] for ix in inspect(engine).get_indexes("events") if ix["name"])
    with sqlite3.connect(db) as conn:
        conn.execute(f"DROP INDEX {name}")
    report = repair_schema(engine)
    assert report.ok and any(name in line for line in report.repaired)
    assert schema_differences(engine) == []


def test_missing_column_is_reported_with_the_way_out(db: Path) -> None:
    url = f"sqlite:///{db}"
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE chats DROP COLUMN title")
    r = runner.invoke(app, ["db", "upgrade", "--db", url])
    assert r.exit_code == 1
    assert "column chats.title is missing" in r.output and "back up the database" in r.output


def test_fresh_database_matches_the_models(db_url: str) -> None:
    """Migrations and models agree on both dialects: the repair has nothing to do on a clean database."""
    engine = make_engine(db_url)
    upgrade(engine)
    assert schema_differences(engine) == []
