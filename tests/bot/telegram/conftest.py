"""Fixtures for the bot tests: the fake Bot API, a config pointing at it, a running Application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.service import BotService
from bot.telegram.context import AccessPolicy, BotServices
from core.config import Config, default_config
from storage.db import open_database
from tests.fakes.markets import MarketsValidator
from tests.fakes.telegram import FakeTelegram

ADMIN = 1001
MEMBER = 1002
STRANGER = 6666
GROUP = -100200
MARKETS = {"binance": ["BTC/USDT", "ETH/USDT", "ETH/BTC", "SOL/USDT", "DOGE/USDT"]}


@pytest.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def make_cfg(url: str, tmp_path: Path, tg: FakeTelegram | None = None, **alerts: Any) -> Config:
    telegram: dict[str, Any] = {"allowed_chat_ids": [ADMIN, MEMBER, GROUP], "admin_user_ids": [ADMIN]}
    if tg is not None:
        telegram.update(token=tg.token, base_url=tg.base_url, base_file_url=tg.base_file_url)
    return default_config(
        database={"url": url},
        exchanges={"binance": {}},
        detectors={"zscore": {}, "pump_dump": {}},
        telegram=telegram,
        # charts drawn in-process: a worker pool per test would only add start-up time (test_chart_delivery covers it)
        alerts={"chart_dir": str(tmp_path / "charts"), "chart_bars": 60, "chart_workers": 0, **alerts},
    )


@pytest.fixture
def bot_cfg(sqlite_url: str, tmp_path: Path, tg: FakeTelegram) -> Config:
    return make_cfg(sqlite_url, tmp_path, tg)


@pytest.fixture
def factory(bot_cfg: Config) -> sessionmaker[Session]:
    engine, factory = open_database(bot_cfg.database.url)
    return factory


@pytest.fixture
def services(bot_cfg: Config, factory: sessionmaker[Session]) -> BotServices:
    service = BotService(bot_cfg, factory, validate_symbol=MarketsValidator(MARKETS))
    access = AccessPolicy(frozenset(bot_cfg.telegram.allowed_chat_ids), frozenset(bot_cfg.telegram.admin_user_ids))
    return BotServices(service=service, access=access)
