"""The shared service on a real database, and ``vigil backtest`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.service import backtest_symbol, equity_png, summarize
from backtest.strategy import make_strategy
from bot.cli.root import app
from storage.candle_csv import write_candle_csv
from storage.candles import upsert_candles
from storage.db import open_database
from storage.events import NewEvent, insert_events

runner = CliRunner()


def _market(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    close = 30 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([30.0], close[:-1]))
    idx = pd.date_range("2024-02-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": 5.0,
        },
        index=idx,
    )


BARS = [5, 9, 40, 41, 90, 150, 198]


def _stored(url: str, market: pd.DataFrame) -> object:
    _engine, factory = open_database(url)
    with factory.begin() as s:
        upsert_candles(s, "binance", "ETH/USDT", "1h", market)
        insert_events(
            s,
            [
                NewEvent("binance", "ETH/USDT", "1h", det, int(market.index[b].value // 10**6), 3.0 + i, 2.0)
                for i, b in enumerate(BARS)
                for det in ("zscore", "other")
                if det == "zscore" or b == 9
            ],
        )
    return factory


def test_backtest_symbol_matches_run_backtest_on_the_same_data(db_url: str) -> None:
    market = _market()
    factory = _stored(db_url, market)
    result = backtest_symbol(
        factory,
        exchange="binance",
        symbol="eth/usdt",
        timeframe="1h",
        detector="zscore",
        params={"hold_bars": "6"},
        random_draws=10,
    )
    events = normalize_events(
        pd.DataFrame({"timestamp": market.index[BARS], "score": 3.0 + np.arange(len(BARS)), "symbol": "ETH/USDT"})
    )
    direct = run_backtest({"ETH/USDT": market}, events, make_strategy("fixed_hold", {"hold_bars": 6}), random_draws=10)
    cols = ["entry_ts", "entry_price", "exit_ts", "exit_price", "return"]
    pd.testing.assert_frame_equal(result.trades[cols], direct.trades[cols])
    text = summarize(result)
    assert "ETH/USDT" in text and "Trades 5" in text
    assert equity_png(result)[:4] == b"\x89PNG"


def test_cli_backtest_files_writes_json_with_every_trade(tmp_path: Path) -> None:
    market = _market()
    write_candle_csv(market, tmp_path / "c.csv")
    pd.DataFrame({"timestamp": (market.index[BARS].as_unit("ms").asi8).astype(str), "score": 1.0}).to_csv(
        tmp_path / "e.csv", index=False
    )
    out = tmp_path / "o.json"
    res = runner.invoke(
        app,
        [
            "backtest",
            "--candles",
            str(tmp_path / "c.csv"),
            "--events",
            str(tmp_path / "e.csv"),
            "--strategy",
            "fixed_hold",
            "--param",
            "hold_bars=6",
            "--param",
            "fees=0",
            "--param",
            "slippage=0",
            "--json",
            str(out),
            "--html",
            str(tmp_path / "r.html"),
            "--random-draws",
            "10",
            "--db",
            f"sqlite:///{tmp_path}/x.db",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(out.read_text())
    first = data["trades"][0]
    assert first["entry_ts"] == market.index[6].isoformat() and first["exit_ts"] == market.index[12].isoformat()
    assert first["entry_price"] == pytest.approx(market.open.iloc[6])
    assert first["return"] == pytest.approx(market.open.iloc[12] / market.open.iloc[6] - 1)
    assert data["metrics"]["strategy"]["trades"] == len(data["trades"]) == 5
    assert "<img" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--param", "hold_bars=abc"], "hold_bars='abc'"),
        (["--param", "holdbars=3"], "unknown parameter 'holdbars'"),
        (["--strategy", "moon"], "unknown strategy 'moon'"),
    ],
)
def test_cli_backtest_bad_input_is_one_line_naming_the_value(tmp_path: Path, extra: list[str], needle: str) -> None:
    market = _market()
    write_candle_csv(market, tmp_path / "c.csv")
    pd.DataFrame({"timestamp": ["2024-02-01T00:30:00Z"], "score": [1]}).to_csv(tmp_path / "e.csv", index=False)
    base = [
        "backtest",
        "--candles",
        str(tmp_path / "c.csv"),
        "--events",
        str(tmp_path / "e.csv"),
        "--db",
        f"sqlite:///{tmp_path}/x.db",
    ]
    res = runner.invoke(app, base + extra)
    assert res.exit_code == 1
    assert needle in res.output and "Traceback" not in res.output


def test_cli_backtest_event_off_grid_is_named(tmp_path: Path) -> None:
    write_candle_csv(_market(), tmp_path / "c.csv")
    pd.DataFrame({"timestamp": ["2024-02-01T00:30:00Z"], "score": [1]}).to_csv(tmp_path / "e.csv", index=False)
    res = runner.invoke(
        app,
        [
            "backtest",
            "--candles",
            str(tmp_path / "c.csv"),
            "--events",
            str(tmp_path / "e.csv"),
            "--db",
            f"sqlite:///{tmp_path}/x.db",
        ],
    )
    assert res.exit_code == 1 and "2024-02-01T00:30:00" in res.output


def test_cli_backtest_database_form(sqlite_url: str, tmp_path: Path) -> None:
    _stored(sqlite_url, _market())
    res = runner.invoke(
        app,
        [
            "backtest",
            "--symbol",
            "ETH/USDT",
            "--detector",
            "zscore",
            "--exchange",
            "binance",
            "--timeframe",
            "1h",
            "--param",
            "hold_bars=6",
            "--random-draws",
            "10",
            "--db",
            sqlite_url,
            "--png",
            str(tmp_path / "e.png"),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "buy & hold" in res.output and (tmp_path / "e.png").exists()
