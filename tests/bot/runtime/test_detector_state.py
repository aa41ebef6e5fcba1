"""``/detectors`` and ``/status`` show each detector as it really is, for this chat and globally.

A real cycle runs (ccxt against the fake Binance) with four detectors in the
config: one that needs no training, one that is trained and stored as a
model version, one that fails every time it scores, and one switched off in
the config. The chat then asks, through the fake Bot API.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.runtime.compose import System, compose
from core.config import default_config
from storage.db import open_database
from tests.bot.telegram.helpers import candles, say
from tests.fakes import detectors as fake_detectors
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram

ADMIN = 515
H = 3_600_000


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[System, FakeTelegram]]:
    """The composed system after one cycle, its bot connected through its link."""
    fake_detectors.register(monkeypatch)
    frames = {"BTC/USDT": candles(300, seed=1), "ETH/USDT": candles(300, seed=2)}
    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
            exchanges={"binance": {"ccxt_config": ex.ccxt_config(), "max_retries": 0}},
            watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in frames],
            detectors={
                "zscore": {"params": {"window": 48}},
                "tiny_model": {},
                "broken": {},
                "lstm_forecaster": {"enabled": False},
            },
            telegram={
                "token": tg.token,
                "base_url": tg.base_url,
                "base_file_url": tg.base_file_url,
                "allowed_chat_ids": [ADMIN],
                "admin_user_ids": [ADMIN],
            },
            alerts={"chart_dir": str(tmp_path / "charts")},
            scheduler={"history_bars": 250},
        )
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "models", detector_options={"min_train_rows": 100})
        try:
            system.link.start()
            await tg.wait_for(lambda: system.link.up)
            report = await system.runtime.run_cycle("1h", now_ms=int(frames["BTC/USDT"].index[-1].value // 10**6) + H)
            assert set(report.errors) == {"detector:broken"}
            yield system, tg
        finally:
            await system.aclose()


async def test_detectors_shows_what_runs_what_is_trained_and_what_fails(running: Any) -> None:
    _system, tg = running
    [shown] = await say(tg, "/detectors", chat_id=ADMIN)
    lines = {line.split(":")[0].lstrip("• "): line for line in shown.splitlines()[1:]}
    assert lines["zscore"] == "• zscore: on, running (nothing to train)"
    assert re.fullmatch(
        r"• tiny_model: on, running v1, model v1 trained \d{4}-\d\d-\d\d \d\d:\d\d UTC on 2024-01-03 → 2024-01-13",
        lines["tiny_model"],
    ), lines["tiny_model"]
    assert re.fullmatch(
        r"• broken: on, failing at \d\d:\d\d UTC: RuntimeError: boom: the model file is corrupt", lines["broken"]
    ), lines["broken"]
    assert lines["lstm_forecaster"] == "• lstm_forecaster: off in the config"
    # the registered variants that do not run are not listed as on
    assert "Not in the config (add [detectors.NAME] to use): " in shown
    for name in ("gru_autoencoder", "attention_autoencoder", "cnn_autoencoder", "pump_dump"):
        assert f"• {name}" not in shown and name in lines["Not in the config (add [detectors.NAME] to use)"]

    [status] = await say(tg, "/status", chat_id=ADMIN)
    assert "Detectors: zscore running (nothing to train); tiny_model running v1; broken failing at" in status
    assert "Telegram: connected" in status


async def test_detectors_for_a_symbol_and_for_this_chat_and_switches_that_cannot_work(running: Any) -> None:
    _system, tg = running
    assert await say(tg, "/detectors ETH/USDT tiny_model off", chat_id=ADMIN) == ["tiny_model is now off for ETH/USDT."]
    await say(tg, "/threshold BTC/USDT zscore 7", chat_id=ADMIN)
    [everywhere] = await say(tg, "/detectors", chat_id=ADMIN)
    assert "zscore: on, threshold 7 for BTC/USDT, running" in everywhere
    assert "tiny_model: on, off for ETH/USDT, running v1" in everywhere
    [eth] = await say(tg, "/detectors ETH/USDT", chat_id=ADMIN)
    assert "tiny_model: switched off in chat, running v1" in eth
    await say(tg, "/mute 2h", chat_id=ADMIN)
    [muted] = await say(tg, "/detectors", chat_id=ADMIN)
    assert "Alerts are muted in this chat until" in muted

    [reply] = await say(tg, "/detectors * lstm_forecaster on", chat_id=ADMIN)
    assert reply.startswith("lstm_forecaster is not enabled in the config")
    [reply] = await say(tg, "/detectors * gru_autoencoder on", chat_id=ADMIN)
    assert reply.startswith("gru_autoencoder is not enabled in the config")
