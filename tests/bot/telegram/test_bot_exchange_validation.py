"""/watch with the production validator (feeds.pool.FeedPool over ccxt) against the fake Binance."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.runtime.compose import build_service
from bot.telegram.application import build_application, running_application
from bot.telegram.context import AccessPolicy, BotServices
from core.config import default_config
from feeds.pool import FeedPool
from storage.db import open_database
from storage.models import WatchlistEntry
from tests.bot.telegram.conftest import ADMIN
from tests.bot.telegram.helpers import say
from tests.fakes.binance import FakeBinance, make_candles
from tests.fakes.telegram import FakeTelegram


async def test_watch_checks_the_exchange_markets(tg: FakeTelegram, sqlite_url: str, tmp_path: Path) -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}, extra_symbols=["ETH/USDT", "ETH/BTC"]) as fake:
        cfg = default_config(
            database={"url": sqlite_url},
            exchanges={"binance": {"ccxt_config": fake.ccxt_config()}},
            telegram={"token": tg.token, "base_url": tg.base_url, "admin_user_ids": [ADMIN]},
            alerts={"chart_dir": str(tmp_path)},
        )
        _engine, factory = open_database(sqlite_url)
        feeds = FeedPool(cfg.exchanges)
        service = build_service(cfg, factory, feeds=feeds, backtests=False)
        app = build_application(cfg, BotServices(service, AccessPolicy.from_config(cfg.telegram)), flush_interval=None)
        try:
            async with running_application(app, poll_timeout=1):
                assert await say(tg, "/watch eth/usdt", chat_id=ADMIN) == ["Now watching ETH/USDT 1h on binance."]
                [reply] = await say(tg, "/watch ETH/USDX", chat_id=ADMIN)
        finally:
            await feeds.close()
    assert "ETH/USDX" in reply and "not listed" in reply and "ETH/USDT" in reply
    assert reply.lower().count("did you mean") == 1
    with factory() as s:
        assert [e.symbol for e in s.scalars(select(WatchlistEntry))] == ["ETH/USDT"]


async def test_watch_refuses_a_timeframe_the_exchange_does_not_offer(
    tg: FakeTelegram, sqlite_url: str, tmp_path: Path
) -> None:
    """A listed pair with an unlisted timeframe: the answer names the timeframe, never "did you mean <same pair>"."""
    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}) as fake:
        cfg = default_config(
            database={"url": sqlite_url},
            exchanges={"binance": {"ccxt_config": fake.ccxt_config()}},
            telegram={"token": tg.token, "base_url": tg.base_url, "admin_user_ids": [ADMIN]},
            alerts={"chart_dir": str(tmp_path)},
        )
        _engine, factory = open_database(sqlite_url)
        feeds = FeedPool(cfg.exchanges)
        service = build_service(cfg, factory, feeds=feeds, backtests=False)
        app = build_application(cfg, BotServices(service, AccessPolicy.from_config(cfg.telegram)), flush_interval=None)
        try:
            async with running_application(app, poll_timeout=1):
                [reply] = await say(tg, "/watch BTC/USDT 2m", chat_id=ADMIN)
        finally:
            await feeds.close()
    assert "binance does not offer 2m candles" in reply and "1m, 3m" in reply
    assert "did you mean" not in reply.lower()
    with factory() as s:
        assert list(s.scalars(select(WatchlistEntry))) == []


async def test_exchange_refusing_a_listed_symbol_does_not_suggest_that_symbol() -> None:
    """Binance answers -1121 "Invalid symbol" for a pair it lists (e.g. one halted for an interval)."""
    from core.config import ExchangeConfig
    from core.errors import DataSourceError
    from feeds.exchange import ExchangeFeed

    async with FakeBinance({"BTC/USDT": make_candles(periods=50)}, extra_symbols=["BTC/USDC"]) as fake:
        fake.fail_next(400, {"code": -1121, "msg": "Invalid symbol."}, path="/api/v3/klines")
        async with ExchangeFeed("binance", ExchangeConfig(ccxt_config=fake.ccxt_config(), max_retries=0)) as feed:
            try:
                await feed.fetch_closed_candles("BTC/USDT", "1h", 0)
            except DataSourceError as err:
                message, suggestions = str(err), getattr(err, "suggestions", [])
    assert "BTC/USDT" in message and "lists" in message
    assert "BTC/USDT" not in suggestions and "did you mean BTC/USDT" not in message
