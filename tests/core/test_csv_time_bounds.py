"""Issue 17, failure 4: a time the database cannot hold is refused, naming file, line, column and value.

Before: ``99999999999999999999`` in ``timestamp_ms`` wrapped to -9223372036854775808 and was
stored with exit code 0; ``1e16`` and ISO ``9999-12-31`` raised pandas' OutOfBoundsDatetime.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.root import app
from core.csvfiles import read_csv_table
from core.errors import InputError
from storage.candles import load_candles
from storage.db import open_database

runner = CliRunner()


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("timestamp_ms", "99999999999999999999"),
        ("timestamp_ms", "1e16"),
        ("timestamp_ms", "9223372036854775807"),
        ("timestamp", "9999-12-31"),
        ("timestamp", "2262-04-12T00:00:00Z"),
    ],
)
def test_import_refuses_times_beyond_the_storable_range(tmp_path: Path, header: str, value: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(
        f"{header},open,high,low,close,volume\n1704067200000,1,1,1,1,1\n{value},1,1,1,1,1\n".replace(
            "1704067200000", "1704067200000" if header == "timestamp_ms" else "2024-01-01T00:00:00Z"
        )
    )
    url = f"sqlite:///{tmp_path / 'v.db'}"
    args = ["import-candles", str(path), "--exchange", "binance", "--symbol", "BTC/USDT", "--timeframe", "1h"]
    r = runner.invoke(app, [*args, "--db", url])
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1, r.output
    assert f"{path}:3: column '{header}'" in lines[0] and repr(value) in lines[0]
    _engine, factory = open_database(url)
    with factory() as s:
        assert load_candles(s, "binance", "BTC/USDT", "1h").empty  # nothing partial


@pytest.mark.parametrize("accept", ["epoch_ms", "iso_or_ms", "iso_or_epoch"])
def test_times_refuse_huge_epoch_numbers_in_every_mode(tmp_path: Path, accept: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp_ms,v\n1704067200000,1\n1e300,2\n")
    table = read_csv_table(path)
    with pytest.raises(InputError, match=r"t\.csv:3: column 'timestamp_ms'.*'1e300'"):
        table.times("timestamp_ms", accept)  # type: ignore[arg-type]


def test_times_refuse_huge_epoch_seconds(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,v\n1700000000,1\n99999999999,2\n")  # below 1e11, so seconds: year 5138
    with pytest.raises(InputError, match=r"t\.csv:3: column 'timestamp'.*'99999999999'"):
        read_csv_table(path).times("timestamp", "iso_or_epoch")


def test_times_keep_the_last_storable_day(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("timestamp,v\n2262-04-10T00:00:00Z,1\n")
    assert str(read_csv_table(path).times("timestamp", "iso")[0].date()) == "2262-04-10"
