"""An asset group end to end: three venues on three fake exchanges, one dislocation, one alert naming it.

Three ``FakeBinance`` servers stand for binance, okx and kraken (the config's
``ccxt_id = "binance"`` points the real ccxt client at each); kraken quotes the asset in
USD. The asset's real path is shared, the venues differ by bid-ask bounce and lags, and
okx alone is pushed 5 % up for three bars. Real cycles (ccxt, SQLite, the divergence
detector through the one alarm rule, the outbox, python-telegram-bot against the fake
Bot API) must send exactly one alert, naming okx, with the all-venues chart.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sqlalchemy import select

from bot.runtime.compose import compose
from core.config import default_config
from feeds.synthetic import generate_market
from feeds.synthetic_venues import replay_as_venues
from storage.db import open_database
from storage.models import Alert, Event
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram

CHAT = -1002
STEP = 3_600_000
DISLOCATED_AT = 330  # bar index of the first displaced okx bar


def _venues() -> dict[str, pd.DataFrame]:
    base = generate_market(["BTC/USDT"], days=15, timeframe="1h", seed=77, anomaly_rate=0.0)
    frame = base.candles["BTC/USDT"][["open", "high", "low", "close", "volume"]]
    venues = replay_as_venues(frame, ("binance", "okx", "kraken"), seed=5, timeframe="1h", usd_venues=("kraken",))
    okx = venues["okx"].copy()
    okx.iloc[DISLOCATED_AT : DISLOCATED_AT + 3, :4] *= 1.05
    okx.iloc[DISLOCATED_AT + 3, 0] *= 1.05  # the next bar opens where the displaced close was
    okx["high"] = okx[["open", "high", "close"]].max(axis=1)
    okx["low"] = okx[["open", "low", "close"]].min(axis=1)
    venues["okx"] = okx
    return venues


async def test_a_group_of_three_venues_alerts_once_on_the_venue_that_broke_away(tmp_path: Path) -> None:
    venues = _venues()
    symbols = {"binance": "BTC/USDT", "okx": "BTC/USDT", "kraken": "BTC/USD"}
    fakes = {name: FakeBinance({symbols[name]: frame}) for name, frame in venues.items()}
    for fake in fakes.values():
        await fake.start()
    try:
        async with FakeTelegram() as tg:
            cfg = default_config(
                database={"url": f"sqlite:///{tmp_path / 'vigil.db'}"},
                exchanges={
                    name: {"ccxt_id": "binance", "ccxt_config": fake.ccxt_config()} for name, fake in fakes.items()
                },
                groups=[
                    {
                        "symbol": "BTC/USDT",
                        "exchanges": ["binance", "okx", "kraken"],
                        "symbols": {"kraken": "BTC/USD"},
                    }
                ],
                detectors={"divergence": {}},
                telegram={
                    "token": tg.token,
                    "base_url": tg.base_url,
                    "base_file_url": tg.base_file_url,
                    "allowed_chat_ids": [CHAT],
                },
                alerts={"chart_dir": str(tmp_path / "charts"), "cooldown_minutes": 360},
                scheduler={"history_bars": 300},
            )
            _engine, factory = open_database(cfg.database.url)
            system = await compose(cfg, factory, model_root=tmp_path / "models", with_application=False)
            index = venues["binance"].index
            try:
                for i in range(DISLOCATED_AT - 6, DISLOCATED_AT + 12):
                    now_ms = int(index[i].value // 10**6) + STEP + 2_000  # just after bar i closed
                    report = await system.runtime.run_cycle("1h", now_ms=now_ms)
                    assert not report.errors, report.errors
            finally:
                await system.aclose()
    finally:
        for fake in fakes.values():
            await fake.stop()

    with factory() as s:
        events = s.scalars(select(Event)).all()
        alerts = s.scalars(select(Alert)).all()
    assert events and {e.exchange for e in events} == {"okx"}  # only the venue that broke away
    first = min(e.bar_ts for e in events)
    assert first == int(index[DISLOCATED_AT].value // 10**6)
    assert all(e.kind == "divergence" for e in events)
    assert set(events[0].details["venues"]) == {"binance:BTC/USDT", "okx:BTC/USDT", "kraken:BTC/USD"}
    assert events[0].details["group_gap"] > 0.03
    assert len(alerts) == 1 and alerts[0].exchange == "okx"

    # the alert's text, then its chart (with the venues panel) as a reply to it
    texts = [c for c in tg.calls("sendMessage", ok_only=True) if int(c.params["chat_id"]) == CHAT]
    photos = [c for c in tg.calls("sendPhoto", ok_only=True) if int(c.params["chat_id"]) == CHAT]
    assert len(texts) == len(photos) == 1
    text = texts[0].params["text"]
    assert "okx" in text and "broke away from its group" in text and "binance" in text
    assert next(iter(photos[0].files.values())).startswith(b"\x89PNG")
