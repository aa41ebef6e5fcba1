"""`vigil backfill` and `vigil check-candles` end to end (CLI -> ccxt -> fake Binance -> SQLite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from typer.testing import CliRunner

from bot.cli.root import app
from storage.candle_csv import write_candle_csv
from storage.candles import load_candles
from storage.db import open_database
from tests.fakes.binance import FakeBinance, make_candles

runner = CliRunner()


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    """Just enough TOML for nested tables of scalars and lists."""
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            lines.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines)


def _config(tmp_path: Path, fake: FakeBinance, per_request: int = 1000) -> Path:
    path = tmp_path / "config.toml"
    exchange = {
        "max_retries": 1,
        "retry_base_delay": 0.001,
        "candles_per_request": per_request,
        "ccxt_config": fake.ccxt_config(),
    }
    path.write_text(_toml({"exchanges": {"binance": exchange}}), encoding="utf-8")
    return path


def _stored(url: str) -> pd.DataFrame:
    _engine, factory = open_database(url)
    with factory() as s:
        return load_candles(s, "binance", "BTC/USDT", "1h")


def test_backfill_command_downloads_and_resumes(tmp_path: Path, sqlite_url: str) -> None:
    fake = FakeBinance({"BTC/USDT": make_candles(periods=600)})
    args = ["backfill", "--exchange", "binance", "--symbol", "btc/usdt", "--timeframe", "1h"]
    args += ["--since", "2024-01-01", "--until", "2024-01-21", "--db", sqlite_url]
    with fake.running_in_thread():
        config = _config(tmp_path, fake, per_request=100)
        fake.fail_after(2)  # the exchange goes down after two pages
        broken = runner.invoke(app, [*args, "--config", str(config)])
        assert broken.exit_code == 1
        assert "ExchangeNotAvailable" in broken.output and "Traceback" not in broken.output
        assert len(_stored(sqlite_url)) == 200
        fake.fail_after(None)
        first = runner.invoke(app, [*args, "--config", str(config)])
        again = runner.invoke(app, [*args, "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "280 rows added, 0 gaps filled, 0 gaps remaining" in first.output
    assert again.exit_code == 0 and "0 rows added" in again.output
    stored = _stored(sqlite_url)
    assert len(stored) == 480 and stored.index[-1] == pd.Timestamp("2024-01-20 23:00", tz="UTC")


def test_backfill_command_unknown_symbol_is_one_line_error(tmp_path: Path, sqlite_url: str) -> None:
    fake = FakeBinance({"BTC/USDT": make_candles(periods=10)}, extra_symbols=["ETH/USDT"])
    with fake.running_in_thread():
        result = runner.invoke(
            app,
            ["backfill", "--exchange", "binance", "--symbol", "ETH/USTD", "--since", "2024-01-01"]
            + ["--config", str(_config(tmp_path, fake)), "--db", sqlite_url],
        )
    assert result.exit_code == 1
    assert "'ETH/USTD' is not listed; did you mean ETH/USDT" in result.output
    assert "Traceback" not in result.output


def test_backfill_command_rejects_bad_dates(sqlite_url: str) -> None:
    result = runner.invoke(
        app,
        ["backfill", "--exchange", "binance", "--symbol", "BTC/USDT", "--since", "yesterday-ish", "--db", sqlite_url],
    )
    assert result.exit_code == 1 and "--since" in result.output and "yesterday-ish" in result.output


def test_check_candles_reports_gaps_and_problems(tmp_path: Path) -> None:
    good = make_candles(periods=100)
    holed = good.drop(good.index[10:40])
    write_candle_csv(good, tmp_path / "GOOD_USDT-1h.csv")
    write_candle_csv(holed, tmp_path / "HOLED_USDT-1h.csv")
    (tmp_path / "BAD_USDT-1h.csv").write_text("timestamp_ms,open,high,low,close,volume\n1704067200000,1,0.5,1,1,1\n")
    ok = runner.invoke(app, ["check-candles", str(tmp_path / "GOOD_USDT-1h.csv"), "--timeframe", "1h"])
    assert ok.exit_code == 0 and "100 rows" in ok.output and "0 gaps" in ok.output
    report = runner.invoke(
        app, ["check-candles", "--markdown", *(str(tmp_path / n) for n in ("HOLED_USDT-1h.csv", "BAD_USDT-1h.csv"))]
    )
    assert report.exit_code == 1
    assert "| HOLED_USDT-1h.csv | 70 |" in report.output and "30 missing bars" in report.output
    assert "BAD_USDT-1h.csv" in report.output and "high is below" in report.output


def test_check_candles_on_shared_files(shared_data: Path) -> None:
    files = sorted((shared_data / "candles").glob("*.csv"))
    assert files, "no candle files in the shared data folder"
    result = runner.invoke(app, ["check-candles", "--markdown", *map(str, files)])
    lines = [line for line in result.output.splitlines() if line.startswith("| ") and "file" not in line]
    assert len(lines) == len(files)  # every file imports (no 'unreadable' row) ...
    assert not any("unreadable" in line for line in lines)
    bad = [line.split(" | ")[0][2:] for line in lines if not line.endswith("| ok |")]
    # ... and the only one flagged is the sparse 1-minute XRP/ETH sample (44% of its minutes missing)
    assert bad == ["XRP_ETH-1m.csv"]
    assert result.exit_code == 1
