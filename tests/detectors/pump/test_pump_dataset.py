from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from bot.cli.root import app
from core.errors import InputError
from detectors.pump.dataset import read_pump_events
from tests.fakes.binance import FakeBinance, make_candles

runner = CliRunner()
PUMP = pd.Timestamp("2022-09-20 15:56", tz="UTC")


def _toml(table: dict[str, Any], prefix: str = "") -> str:
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {json.dumps(v)}" for k, v in scalars.items()]
    for key, value in table.items():
        if isinstance(value, dict):
            lines.append(_toml(value, f"{prefix}.{key}" if prefix else key))
    return "\n".join(lines)


def _pumped(start: str, periods: int, pump: pd.Timestamp, seed: int) -> pd.DataFrame:
    frame = make_candles(start, periods, "1m", seed=seed, price=1e-5)
    at = (frame.index >= pump) & (frame.index < pump + pd.Timedelta(minutes=3))
    frame.loc[at, ["open", "high", "low", "close"]] *= 1.3
    frame.loc[at, "volume"] *= 20
    return frame


def test_build_dataset_writes_labelled_candles_around_each_pump(tmp_path: Path) -> None:
    fake = FakeBinance(
        {
            "ADX/BTC": _pumped("2022-09-20 10:00", 8 * 60, PUMP, 1),
            "IRIS/BTC": _pumped("2022-09-19 10:00", 8 * 60, PUMP - pd.Timedelta(days=1), 2),
        },
        timeframe="1m",
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "symbol,date,hour,exchange\nADX,2022-9-20,15:56,binance\nNOPE,2022-9-19,10:00,binance\n"
        "IRIS,2022-9-19,15:56,binance\nXYZ,2022-9-18,9:00,yobit\n"
    )
    out = tmp_path / "set.csv"
    with fake.running_in_thread():
        config = tmp_path / "config.toml"
        exchange = {
            "max_retries": 1,
            "retry_base_delay": 0.001,
            "candles_per_request": 100,
            "ccxt_config": fake.ccxt_config(),
        }
        config.write_text(_toml({"exchanges": {"binance": exchange}}))
        res = runner.invoke(
            app,
            ["pumpdump", "build-dataset", "--events", str(events), "--exchange", "binance", "--before", "3h",
             "--after", "1h", "--out", str(out), "--config", str(config)],
        )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "NOPE/BTC" in res.output and "not listed" in res.output
    data = pd.read_csv(out)
    assert sorted(data["pump_index"].unique().tolist()) == [0, 2]
    adx = data[data["pump_index"] == 0]
    assert len(adx) == 4 * 60  # 3 h before + 1 h after, one-minute bars, fetched in pages of 100
    assert len(fake.kline_requests) >= 6
    assert adx.loc[adx["gt"] == 1, "date"].tolist() == ["2022-09-20 15:56:00"]
    at = int(adx.index[adx["gt"] == 1][0])
    assert adx.loc[at, "close"] > adx.loc[at - 1, "close"] * 1.2  # the served pump bar, not a made-up one


def test_read_pump_events_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("symbol,date,hour\nADX,2022-9-20,15:56\nBTS,2022-13-01,12:00\n")
    with pytest.raises(InputError, match=r"e\.csv:3: columns 'date'/'hour': cannot parse '2022-13-01 12:00'"):
        read_pump_events(path)


def test_read_pump_events_reads_the_shared_go3x3_list(shared_data: Path) -> None:
    events = read_pump_events(shared_data / "pump_dump" / "pump_events_binance_2021_2022_go3x3.csv", "binance")
    assert len(events) == 351
    assert events["time"].iloc[0] == pd.Timestamp("2022-09-20 15:56", tz="UTC")
