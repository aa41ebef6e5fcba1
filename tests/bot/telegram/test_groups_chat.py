"""Asset groups from chat and CLI: /watch SYMBOL EX1,EX2,EX3, /watch GROUP, /list, /status, vigil watch -e a,b,c."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from bot.cli.root import app as cli
from bot.service import BotService
from bot.telegram.application import build_application, running_application
from bot.telegram.context import AccessPolicy, BotServices
from core.config import Config, default_config
from storage.candles import upsert_candles
from storage.db import open_database
from storage.models import WatchlistEntry
from tests.bot.telegram.conftest import ADMIN, MEMBER
from tests.bot.telegram.helpers import candles, say
from tests.fakes.markets import MarketsValidator
from tests.fakes.telegram import FakeTelegram

MARKETS = {"binance": ["BTC/USDT", "ETH/USDT"], "okx": ["BTC/USDT", "ETH/USDT"], "kraken": ["BTC/USD", "ETH/EUR"]}


@pytest.fixture
def cfg(sqlite_url: str, tmp_path: Path, tg: FakeTelegram) -> Config:
    return default_config(
        database={"url": sqlite_url},
        exchanges={"binance": {}, "okx": {}, "kraken": {}},
        groups=[{"name": "majors-eth", "symbol": "ETH/USDT", "exchanges": ["binance", "okx"]}],
        onchain=[
            {
                "name": "cm",
                "kind": "coinmetrics",
                "metric": "active_addresses",
                "options": {"coinmetrics_metric": "AdrActCnt"},
            }
        ],
        telegram={
            "token": tg.token,
            "base_url": tg.base_url,
            "base_file_url": tg.base_file_url,
            "allowed_chat_ids": [ADMIN, MEMBER],
            "admin_user_ids": [ADMIN],
        },
        alerts={"chart_dir": str(tmp_path / "charts")},
    )


@pytest.fixture
def factory(cfg: Config) -> sessionmaker[Session]:
    return open_database(cfg.database.url)[1]


@pytest.fixture
async def running(cfg: Config, factory: sessionmaker[Session], tg: FakeTelegram) -> AsyncIterator[Any]:
    service = BotService(cfg, factory, validate_symbol=MarketsValidator(MARKETS))
    access = AccessPolicy(frozenset(cfg.telegram.allowed_chat_ids), frozenset(cfg.telegram.admin_user_ids))
    application = build_application(cfg, BotServices(service=service, access=access), flush_interval=None)
    async with running_application(application, poll_timeout=1):
        yield application


def _rows(factory: sessionmaker[Session]) -> list[tuple[str, str, str, str | None]]:
    with factory() as s:
        return sorted((e.exchange, e.symbol, e.timeframe, e.group_name) for e in s.scalars(select(WatchlistEntry)))


async def test_watch_one_asset_on_three_exchanges_maps_quotes(running: Any, tg: FakeTelegram, factory: Any) -> None:
    [reply] = await say(tg, "/watch btc/usdt binance,okx,kraken", chat_id=ADMIN)
    assert reply == "Watching group BTC 1h on binance (BTC/USDT), okx (BTC/USDT), kraken (BTC/USD) (3 new)."
    assert _rows(factory) == [
        ("binance", "BTC/USDT", "1h", "BTC"),
        ("kraken", "BTC/USD", "1h", "BTC"),
        ("okx", "BTC/USDT", "1h", "BTC"),
    ]
    [listing] = await say(tg, "/list", chat_id=MEMBER)
    assert "BTC/USD 1h (kraken) [group BTC]" in listing


async def test_a_group_with_an_exchange_lacking_the_asset_is_refused_whole(
    running: Any, tg: FakeTelegram, factory: Any
) -> None:
    [reply] = await say(tg, "/watch ETH/USDT binance,kraken 4h", chat_id=ADMIN)
    assert "kraken lists none of ETH/USDT, ETH/USD, ETH/USDC" in reply and "not added" in reply
    assert _rows(factory) == []
    [bad] = await say(tg, "/watch ETH/USDT binance,binance", chat_id=ADMIN)
    assert "each exchange once" in bad


async def test_watch_a_configured_group_by_name(running: Any, tg: FakeTelegram, factory: Any) -> None:
    [reply] = await say(tg, "/watch majors-eth", chat_id=ADMIN)
    assert reply.startswith("Watching group majors-eth 1h on binance (ETH/USDT), okx (ETH/USDT)")
    [unknown] = await say(tg, "/watch nope", chat_id=ADMIN)
    assert "bad symbol 'nope'" in unknown


async def test_status_lists_each_group_with_its_venues_and_onchain_sources(
    running: Any, tg: FakeTelegram, factory: Any
) -> None:
    await say(tg, "/watch BTC/USDT binance,okx,kraken", chat_id=ADMIN)
    with factory.begin() as s:
        upsert_candles(s, "okx", "BTC/USDT", "1h", candles(5))
    [status] = await say(tg, "/status", chat_id=MEMBER)
    lines = status.splitlines()
    head = lines.index("Group BTC 1h (3 venues):")
    venues = lines[head + 1 : head + 4]
    assert [v.split(":")[0].strip() for v in venues] == ["◦ binance BTC/USDT", "◦ kraken BTC/USD", "◦ okx BTC/USDT"]
    assert "last bar 2024-01-01 04:00" in venues[2]
    assert lines[head + 4].startswith("  ◦ on-chain active_addresses (cm): last value")


def test_cli_watch_takes_a_comma_separated_group(sqlite_url: str) -> None:
    runner = CliRunner()
    r = runner.invoke(cli, ["watch", "SOL/USDT", "-e", "binance,okx", "-g", "sol", "--no-validate", "--db", sqlite_url])
    assert r.exit_code == 0, r.output
    assert "now watching binance:SOL/USDT:1h (group sol)" in r.output
    r = runner.invoke(cli, ["watchlist", "--db", sqlite_url])
    assert r.output.count("sol") >= 2
    _engine, factory = open_database(sqlite_url)
    assert _rows(factory) == [("binance", "SOL/USDT", "1h", "sol"), ("okx", "SOL/USDT", "1h", "sol")]
