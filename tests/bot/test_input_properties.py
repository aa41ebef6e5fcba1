"""Property tests (Hypothesis) for what users type: chat arguments, CLI arguments and imported files.

Properties: a parser returns a sane value or an ``InputError`` (one line); a command given
hostile input exits non-zero with one line on stderr, commits nothing, and never shows a
configured secret, even when the secret itself is in the input; a chat never answers with
a traceback or a secret, and chats outside the allowlist change nothing.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from bot.cli.root import app
from bot.inputs import (
    MAX_ARG_LEN,
    MIN_THRESHOLD,
    parse_count,
    parse_detector,
    parse_duration,
    parse_exchange,
    parse_symbol,
    parse_threshold_value,
    parse_timeframe,
    split_args,
)
from core.errors import InputError

FAST = settings(max_examples=150, deadline=None, derandomize=True)
TOKEN = "123456789:AAHsecretsecretsecretsecretsecret00"
API_KEY = "apikey-SECRET-4242"

HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Cc", "Cs", "Co", "Zl", "Zp", "Mn"]), max_size=10),
    st.sampled_from(
        [
            "",
            " ",
            "BTC/USDT",
            "btc-usdt",
            "<b>x</b>",
            "BTC/USDT; DROP TABLE candles",
            "../../etc/passwd",
            "1e-320",
            "5e-324",
            "1e309",
            "nan",
            "-0",
            "99999999999999999999",
            "30m",
            "3650d",
            "99999d",
            "0h",
            "1w",
            "٣d",
            "１h",
            "*",
            TOKEN,
            f"/bot{TOKEN}",
        ]
    ),
)


def _one_line_error(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except InputError as err:
        assert "\n" not in str(err) and "\r" not in str(err), repr(str(err))
        return None


@FAST
@given(HOSTILE_TEXT)
def test_symbol_parser(raw: str) -> None:
    value = _one_line_error(parse_symbol, raw)
    if value is not None:
        base, _, quote = value.partition("/")
        assert base.isascii() and base.isalnum() and quote.split(":")[0].isalnum() and value == value.upper()


@FAST
@given(HOSTILE_TEXT)
def test_exchange_and_detector_parsers(raw: str) -> None:
    for fn in (parse_exchange, parse_detector):
        value = _one_line_error(fn, raw)
        if value is not None:
            assert value.isascii() and value == value.lower() and " " not in value


@FAST
@given(HOSTILE_TEXT)
def test_timeframe_and_duration_parsers(raw: str) -> None:
    _one_line_error(parse_timeframe, raw)
    value = _one_line_error(parse_duration, raw, maximum=timedelta(days=90))
    if value is not None:
        assert timedelta(0) < value <= timedelta(days=90)


@FAST
@given(st.one_of(HOSTILE_TEXT, st.floats().map(repr), st.integers().map(str)))
def test_threshold_and_count_parsers(raw: str) -> None:
    value = _one_line_error(parse_threshold_value, raw)
    if value is not None:
        assert math.isfinite(value) and MIN_THRESHOLD <= value <= 1e6
    count = _one_line_error(parse_count, raw)
    if count is not None:
        assert 1 <= count <= 50


@FAST
@given(st.text(max_size=300))
def test_split_args(text: str) -> None:
    args = _one_line_error(split_args, text)
    if args is not None:
        assert len(args) <= 6 and all(len(a) <= MAX_ARG_LEN for a in args)


# -- a command with hostile input ---------------------------------------------------------------------------------
CELL = st.one_of(
    st.sampled_from(["1", "2.5", "0", "-1", "inf", "nan", "", "1e308", "99999999999999999999", "1704067200000", TOKEN]),
    st.text(max_size=6),
)

runner = CliRunner()


def _config(folder: Path) -> Path:
    path = folder / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{folder / "v.db"}"\n'
        f'[exchanges.binance]\nccxt_config = {{ apiKey = "{API_KEY}" }}\n'
        f'[telegram]\ntoken = "{TOKEN}"\n'
    )
    return path


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.lists(CELL, min_size=5, max_size=7), max_size=4),
    symbol=st.one_of(st.just("BTC/USDT"), HOSTILE_TEXT),
    exchange=st.one_of(st.just("binance"), HOSTILE_TEXT),
)
@example(rows=[["1704070800000", "1", "2", "0.5", TOKEN, "3"]], symbol="BTC/USDT", exchange="binance")
@example(rows=[], symbol=f"/bot{TOKEN}", exchange="binance")
def test_import_candles_with_hostile_input(rows: list[list[str]], symbol: str, exchange: str) -> None:
    """Exit 0 with every row stored, or exit 1 with one masked line and nothing stored."""
    from storage.db import open_database
    from storage.models import Candle

    good = "1704067200000,1,2,0.5,1.5,3"
    lines = ["timestamp_ms,open,high,low,close,volume", good] + [",".join(r) for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        csv = folder / "c.csv"
        csv.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        config = _config(folder)
        args = ["import-candles", str(csv), "--exchange", exchange, "--symbol", symbol, "--timeframe", "1h"]
        r = runner.invoke(app, [*args, "--config", str(config)])
        assert "AAHsecretsecret" not in r.output and API_KEY not in r.output
        assert "Traceback" not in r.output
        _engine, factory = open_database(f"sqlite:///{folder / 'v.db'}")
        with factory() as s:
            stored = s.scalar(select(func.count()).select_from(Candle))
        if r.exit_code == 0:
            assert stored == len(lines) - 1
        else:
            assert r.exit_code == 1 and stored == 0
            assert len([line for line in r.output.splitlines() if line.strip()]) == 1, r.output


# -- chat ----------------------------------------------------------------------------------------------------------
COMMANDS = [
    "/watch",
    "/unwatch",
    "/threshold",
    "/detectors",
    "/events",
    "/chart",
    "/backtest",
    "/mute",
    "/status",
    "/x",
]


@st.composite
def chat_messages(draw: Any) -> tuple[str, bool]:
    """(text, from an allowed chat)."""
    command = draw(st.sampled_from(COMMANDS))
    args = draw(st.lists(HOSTILE_TEXT.map(lambda t: t.replace("\x00", "")), max_size=4))
    return " ".join([command, *args])[:400], draw(st.booleans())


@pytest.mark.slow
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(chat_messages(), min_size=5, max_size=12))
@example([(f"/watch {TOKEN}", True), (f"/threshold * zscore {TOKEN}", True), (f"/chart {TOKEN}", False)] * 2)
def test_chat_with_hostile_messages(messages: list[tuple[str, bool]]) -> None:
    asyncio.run(_chat_round(messages))


async def _chat_round(messages: list[tuple[str, bool]]) -> None:
    from bot.service import BotService
    from bot.telegram.application import REFUSAL, build_application, running_application
    from bot.telegram.context import AccessPolicy, BotServices
    from core.config import default_config
    from storage.db import open_database
    from storage.models import Chat, SymbolMute, ThresholdOverride, WatchlistEntry
    from tests.fakes.markets import MarketsValidator
    from tests.fakes.telegram import FakeTelegram

    admin, stranger = 1001, 6666
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeTelegram(token=TOKEN) as tg:
            cfg = default_config(
                database={"url": f"sqlite:///{Path(tmp) / 'v.db'}"},
                exchanges={"binance": {"ccxt_config": {"apiKey": API_KEY}}},
                detectors={"zscore": {}},
                telegram={
                    "token": TOKEN,
                    "base_url": tg.base_url,
                    "base_file_url": tg.base_file_url,
                    "allowed_chat_ids": [admin],
                    "admin_user_ids": [admin],
                },
                alerts={"chart_dir": str(Path(tmp) / "charts")},
            )
            _engine, factory = open_database(cfg.database.url)
            service = BotService(cfg, factory, validate_symbol=MarketsValidator({"binance": ["BTC/USDT"]}))
            services = BotServices(service, AccessPolicy(frozenset([admin]), frozenset([admin])))
            application = build_application(cfg, services, flush_interval=None)
            async with running_application(application, poll_timeout=1):
                for text, allowed in messages:
                    tg.push_message(
                        text, chat_id=admin if allowed else stranger, user_id=admin if allowed else stranger
                    )
                await tg.wait_idle(timeout=30)
                await asyncio.sleep(0.5)  # the last handlers finish
            replies = tg.replies_text()
            assert all("AAHsecretsecret" not in r and API_KEY not in r and "Traceback" not in r for r in replies)
            assert all(r == REFUSAL for r in tg.replies_text(stranger))
            with factory() as s:
                for model in (WatchlistEntry, ThresholdOverride, SymbolMute, Chat):
                    rows = list(s.scalars(select(model)))
                    assert all(getattr(row, "chat_id", admin) != stranger for row in rows)
                if not any(allowed for _text, allowed in messages):
                    assert not list(s.scalars(select(WatchlistEntry))) and not list(
                        s.scalars(select(ThresholdOverride))
                    )
