from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from aiohttp import web
from typer.testing import CliRunner

from bot.cli import app
from bot.errors import InputError
from detectors.pump_dataset import read_pump_events
from tests.fakes.binance_pump import FakeBinancePump, ccxt_config

runner = CliRunner()
PUMP = pd.Timestamp("2022-09-20 15:56", tz="UTC")


@pytest.fixture
def fake_binance() -> Iterator[tuple[str, FakeBinancePump]]:
    """The fake served from its own thread and loop, since the CLI runs asyncio.run itself."""
    fake = FakeBinancePump(
        {"ADXBTC": int(PUMP.value // 1_000_000), "IRISBTC": int(PUMP.value // 1_000_000) - 86_400_000}
    )
    loop = asyncio.new_event_loop()
    runner_ = web.AppRunner(fake.app)
    loop.run_until_complete(runner_.setup())
    site = web.TCPSite(runner_, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", fake
    asyncio.run_coroutine_threadsafe(runner_.cleanup(), loop).result(5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _config(tmp_path: Path, base_url: str) -> Path:
    cfg = ccxt_config(base_url)
    path = tmp_path / "config.toml"
    path.write_text(
        "[exchanges.binance]\ncandles_per_request = 100\n"
        f'ccxt_config = {{ urls = {{ api = {{ public = "{cfg["urls"]["api"]["public"]}" }} }}, '
        'options = { fetchMarkets = { types = ["spot"] }, fetchCurrencies = false } }\n'
    )
    return path


def test_build_dataset_writes_labelled_candles_around_each_pump(
    tmp_path: Path, fake_binance: tuple[str, FakeBinancePump]
) -> None:
    base_url, fake = fake_binance
    events = tmp_path / "events.csv"
    events.write_text(
        "symbol,date,hour,exchange\nADX,2022-9-20,15:56,binance\nNOPE,2022-9-19,10:00,binance\n"
        "IRIS,2022-9-19,15:56,binance\nXYZ,2022-9-18,9:00,yobit\n"
    )
    out = tmp_path / "set.csv"
    res = runner.invoke(
        app,
        [
            "pumpdump",
            "build-dataset",
            "--events",
            str(events),
            "--exchange",
            "binance",
            "--before",
            "3h",
            "--after",
            "1h",
            "--out",
            str(out),
            "--config",
            str(_config(tmp_path, base_url)),
        ],
    )
    assert res.exit_code == 0, res.output
    assert "binance does not list NOPE/BTC" in res.output
    data = pd.read_csv(out)
    assert sorted(data["pump_index"].unique().tolist()) == [0, 2]
    adx = data[data["pump_index"] == 0]
    assert len(adx) == 4 * 60  # 3 h before + 1 h after, one-minute bars, several pages of 100
    assert fake.kline_requests >= 6
    assert adx.loc[adx["gt"] == 1, "date"].tolist() == ["2022-09-20 15:56:00"]
    assert adx["close"].max() > adx["close"].iloc[0] * 1.2


def test_read_pump_events_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("symbol,date,hour\nADX,2022-9-20,15:56\nBTS,2022-13-01,12:00\n")
    with pytest.raises(InputError, match=r"e\.csv: line 3, columns date/hour: cannot parse '2022-13-01 12:00'"):
        read_pump_events(path)


def test_read_pump_events_reads_the_shared_go3x3_list(shared_data: Path) -> None:
    events = read_pump_events(shared_data / "pump_dump" / "pump_events_binance_2021_2022_go3x3.csv", "binance")
    assert len(events) == 351
    assert events["time"].iloc[0] == pd.Timestamp("2022-09-20 15:56", tz="UTC")
