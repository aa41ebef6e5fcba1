from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.root import app
from storage.candles import load_candles
from storage.db import open_database

runner = CliRunner()

CSV = """timestamp_ms,open,high,low,close,volume
1704067200000,100,101,99,100.5,10
1704070800000,100.5,102,100,101.5,12
1704074400000,101.5,101.6,100.9,101,8
"""


def _count(url: str) -> int:
    _engine, factory = open_database(url)
    with factory() as s:
        return len(load_candles(s, "binance", "BTC/USDT", "1h"))


def _import(path: Path, url: str) -> object:
    return runner.invoke(
        app,
        [
            "import-candles",
            str(path),
            "--exchange",
            "binance",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--db",
            url,
        ],
    )


def test_import_same_file_twice_leaves_same_rows(tmp_path: Path, db_url: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    first = _import(path, db_url)
    assert first.exit_code == 0, first.output
    assert "3 new" in first.output
    second = _import(path, db_url)
    assert second.exit_code == 0, second.output
    assert "0 new, 3 already present" in second.output
    assert _count(db_url) == 3


def test_iso_timestamp_column_is_accepted(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "iso.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n2024-01-01T01:00:00+00:00,1.5,2,1,1.2,4\n"
    )
    result = _import(path, sqlite_url)
    assert result.exit_code == 0, result.output
    assert _count(sqlite_url) == 2


@pytest.mark.parametrize(
    ("bad_row", "needle"),
    [
        ("1704078000000,101,abc,100,101,5", "column 'high': expected a number, got 'abc'"),
        ("1704078000000,101,100,102,101,5", "high is below open, close or low"),
        ("1704078000000,101,102,100,101,-5", "volume must be >= 0"),
        ("1704074400000,101,102,100,101,5", "duplicate timestamp"),
        ("not-a-time,101,102,100,101,5", "expected epoch milliseconds"),
    ],
)
def test_malformed_csv_names_line_and_changes_nothing(
    tmp_path: Path, sqlite_url: str, bad_row: str, needle: str
) -> None:
    good = tmp_path / "good.csv"
    good.write_text(CSV)
    assert _import(good, sqlite_url).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("100.5,102,100,101.5,12", "100.5,102,100,101.6,12") + bad_row + "\n")
    result = _import(bad, sqlite_url)
    assert result.exit_code == 1
    assert f"{bad}:5:" in result.output
    assert needle in result.output
    _engine, factory = open_database(sqlite_url)
    with factory() as s:
        frame = load_candles(s, "binance", "BTC/USDT", "1h")
    assert len(frame) == 3
    assert frame["close"].iloc[1] == 101.5  # the good rows of the bad file were not applied


def test_missing_column_is_reported(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text("timestamp_ms,open,high,low,close\n1704067200000,1,2,0.5,1.5\n")
    result = _import(path, sqlite_url)
    assert result.exit_code == 1
    assert "missing column(s) volume" in result.output


def test_bad_timeframe_argument_is_reported(tmp_path: Path, sqlite_url: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    result = runner.invoke(
        app,
        [
            "import-candles",
            str(path),
            "--exchange",
            "x",
            "--symbol",
            "A/B",
            "--timeframe",
            "hourly",
            "--db",
            sqlite_url,
        ],
    )
    assert result.exit_code == 1
    assert "--timeframe" in result.output and "'hourly'" in result.output


def test_export_round_trips(tmp_path: Path, sqlite_url: str) -> None:
    src = tmp_path / "c.csv"
    src.write_text(CSV)
    assert _import(src, sqlite_url).exit_code == 0
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app,
        [
            "export-candles",
            "--exchange",
            "binance",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--out",
            str(out),
            "--db",
            sqlite_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == CSV.strip().splitlines()


def test_db_upgrade_is_idempotent(sqlite_url: str) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade", "--db", sqlite_url])
        assert result.exit_code == 0, result.output
        assert "database at revision" in result.output


def test_help_imports_neither_tensorflow_nor_vectorbt() -> None:
    code = (
        "import sys\n"
        "from bot.cli.root import app\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'vectorbt', 'ccxt') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_config_error_exits_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[alerts]\ncooldown_minutes = 'soon'\n")
    out = subprocess.run(
        [sys.executable, "-m", "bot", "config", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert out.returncode == 1
    assert "alerts.cooldown_minutes" in out.stderr and "'soon'" in out.stderr
    assert "Traceback" not in out.stderr
