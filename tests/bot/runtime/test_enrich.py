"""The cycle's extra inputs: on-chain values and order-book features reach the frames, failures do not stop it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import func, select

from bot.runtime.compose import compose
from core.config import default_config
from storage.db import open_database
from storage.models import BookFeatures, Cycle, SocialPoint
from tests.fakes.binance import FakeBinance, make_candles
from tests.fakes.onchain import FakeOnchain

STEP = 3_600_000


def _daily() -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=20, freq="D", tz="UTC")
    return pd.Series(np.arange(1, 21, dtype="float64") * 100.0, index=idx)


async def test_cycles_attach_onchain_and_book_columns_without_look_ahead(tmp_path: Path) -> None:
    frame = make_candles("2024-01-01", periods=24 * 10, price=40_000.0)
    async with FakeBinance({"BTC/USDT": frame}) as ex, FakeOnchain({("BTC", "AdrActCnt"): _daily()}) as chain:
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'v.db'}"},
            exchanges={"binance": {"ccxt_config": ex.ccxt_config()}},
            watchlist=[{"exchange": "binance", "symbol": "BTC/USDT", "book_depth": 20}],
            onchain=[
                {
                    "name": "cm",
                    "kind": "coinmetrics",
                    "metric": "active_addresses",
                    "options": {"coinmetrics_metric": "AdrActCnt", "url": chain.url + "/v4"},
                }
            ],
            detectors={
                "zscore": {
                    "params": {"inputs": ["onchain_active_addresses", "book_imbalance_1pct"], "input_window": 48}
                }
            },
            scheduler={"history_bars": 120},
            alerts={"chart_dir": str(tmp_path / "charts")},
        )
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "m", with_application=False)
        runtime = system.runtime
        t = int(frame.index[24 * 6].value // 10**6)  # 2024-01-07 00:00: the close of the last bar of day 6
        try:
            for now in (t, t + STEP, t + 2 * STEP):
                report = await runtime.run_cycle("1h", now_ms=now)
                assert not report.errors, report.errors
            frames = runtime.enricher.enrich(runtime._load_frames(list(cfg.watchlist), now), cfg.watchlist, "1h", now)
        finally:
            await system.aclose()
    got = frames["binance:BTC/USDT"]
    onchain = got["onchain_active_addresses"]
    # day D (value (D+1) * 100 for 2024-01-0D) is known from D+1 00:00 on
    assert onchain.loc["2024-01-06 23:00"] == 500.0 and onchain.loc["2024-01-07 00:00"] == 600.0
    book = got["book_imbalance_1pct"]
    assert book.notna().sum() == 3 and book.iloc[-3:].notna().all()  # one snapshot per closed bar, no more
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(BookFeatures)) == 3
        assert s.scalar(select(func.count()).select_from(SocialPoint).where(SocialPoint.symbol == "BTC")) >= 6
    assert chain.requests["coinmetrics"] == 1  # a daily metric is not asked for every hour


async def test_failing_onchain_source_and_order_book_never_stop_the_cycle(tmp_path: Path) -> None:
    frame = make_candles("2024-01-01", periods=24 * 4, price=100.0)
    async with FakeBinance({"BTC/USDT": frame}) as ex, FakeOnchain({}) as chain:
        chain.status = 500
        cfg = default_config(
            database={"url": f"sqlite:///{tmp_path / 'v.db'}"},
            exchanges={"binance": {"ccxt_config": ex.ccxt_config()}},
            watchlist=[{"exchange": "binance", "symbol": "BTC/USDT", "book_depth": 7}],  # Binance refuses depth 7
            onchain=[
                {
                    "name": "cm",
                    "kind": "coinmetrics",
                    "metric": "tx",
                    "options": {"coinmetrics_metric": "TxCnt", "url": chain.url + "/v4"},
                }
            ],
            detectors={"zscore": {}},
            scheduler={"history_bars": 60},
            alerts={"chart_dir": str(tmp_path / "charts")},
        )
        _engine, factory = open_database(cfg.database.url)
        system = await compose(cfg, factory, model_root=tmp_path / "m", with_application=False)
        try:
            report = await system.runtime.run_cycle("1h", now_ms=int(frame.index[-1].value // 10**6) + STEP)
        finally:
            await system.aclose()
    assert any(k.startswith("onchain:cm") for k in report.errors)
    assert "book:binance:BTC/USDT" in report.errors
    assert report.candles_added > 0
    with factory() as s:
        cycle = s.scalars(select(Cycle)).one()
    assert cycle.finished_at is not None


def test_groups_and_book_depths_added_from_chat_reach_the_cycle(session_factory) -> None:  # noqa: ANN001
    from bot.runtime.cycle import watched_entries
    from bot.runtime.seed import seed_watchlist_from_config
    from storage.watchlist import add_watch

    cfg = default_config(watchlist=[{"exchange": "binance", "symbol": "ETH/USDT", "group": "ETH"}])
    seed_watchlist_from_config(cfg, session_factory)  # what every start does: the config seeds the table
    with session_factory.begin() as s:
        add_watch(s, "okx", "ETH/USDT", "1h", group="ETH", book_depth=50)
        add_watch(s, "kraken", "ETH/USD", "1h", group="ETH")
        add_watch(s, "kraken", "XRP/USD", "1h")
    with session_factory() as s:
        entries = {(e.exchange, e.symbol): (e.group, e.book_depth) for e in watched_entries(s, cfg, "1h")}
    assert entries == {
        ("binance", "ETH/USDT"): ("ETH", None),
        ("okx", "ETH/USDT"): ("ETH", 50),
        ("kraken", "ETH/USD"): ("ETH", None),
        ("kraken", "XRP/USD"): (None, None),
    }
