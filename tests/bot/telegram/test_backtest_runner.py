"""The production backtest runner for /backtest (runs once the backtest package is on the branch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.runtime.compose import make_backtest_runner
from storage.watchlist import add_watch
from tests.bot.telegram.conftest import make_cfg
from tests.bot.telegram.helpers import candles, store


@pytest.mark.slow
def test_backtest_runner_answers_text_and_an_equity_png(sqlite_url: str, tmp_path: Path) -> None:
    pytest.importorskip("backtest.service", reason="the backtest package has not landed on this branch")
    from storage.db import open_database

    cfg = make_cfg(sqlite_url, tmp_path)
    _engine, factory = open_database(sqlite_url)
    with factory.begin() as s:
        add_watch(s, "binance", "BTC/USDT", "1h")
    store(factory, "BTC/USDT", candles(300, spike_at=200), [(100, "zscore", 6.0), (200, "zscore", 9.0)])
    runner: Any = make_backtest_runner(cfg, factory)
    assert runner is not None
    text, png = runner("BTC/USDT", None, "3650d")  # the default period (90 days) would miss 2024
    assert "BTC/USDT" in text and png[:8] == b"\x89PNG\r\n\x1a\n"
