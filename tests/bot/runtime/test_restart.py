"""Kill ``vigil run`` with SIGKILL at several points of a cycle, restart it, and count.

The fake exchange serves 1-minute bars up to the current minute; the
database says the bot last finished a cycle 40 minutes ago, so the first
cycle after start scores those 40 missed bars, where spikes wait at known
bars. Whatever point the first process dies at, after the restart every
candle is stored once, every spike is an event once, and every alert reaches
the fake Telegram exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from bot.runtime.faults import CRASH_POINTS
from storage.db import open_database
from storage.models import Alert, Candle, Cycle, Delivery, Event, utcnow
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
CHAT = 777
SYMBOLS = ["AAA/USDT", "BBB/USDT", "CCC/USDT"]
SPIKE_AGO = {"AAA/USDT": [30, 12], "BBB/USDT": [25], "CCC/USDT": [18, 6]}  # minutes before the last closed bar


def _frames(now_min: pd.Timestamp) -> dict[str, pd.DataFrame]:
    idx = pd.date_range(end=now_min, periods=400, freq="1min", tz="UTC")  # includes the still-open minute
    rng = np.random.default_rng(5)
    frames = {}
    for symbol in SYMBOLS:
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, len(idx))))
        volume = rng.uniform(90, 110, len(idx))
        for ago in SPIKE_AGO[symbol]:
            volume[-2 - ago] *= 40  # -1 is the open bar, -2 the last closed one
        open_ = np.r_[close[0], close[:-1]]
        frames[symbol] = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * 1.0005,
                "low": np.minimum(open_, close) * 0.9995,
                "close": close,
                "volume": volume,
            },
            index=idx,
        )
    return frames


def _toml(value: object) -> str:
    """A value as TOML (inline tables for dicts), enough for a ccxt constructor config."""
    import json
    import re

    if isinstance(value, dict):
        keys = (k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in value)
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in zip(keys, value.values(), strict=True)) + " }"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def _config(path: Path, db: Path, ex: FakeBinance, tg: FakeTelegram) -> Path:
    path.write_text(f"""
[database]
url = "sqlite:///{db}"
[exchanges.binance]
max_retries = 2
ccxt_config = {_toml(ex.ccxt_config())}
[[watchlist]]
exchange = "binance"
symbol = "AAA/USDT"
timeframe = "1m"
[[watchlist]]
exchange = "binance"
symbol = "BBB/USDT"
timeframe = "1m"
[[watchlist]]
exchange = "binance"
symbol = "CCC/USDT"
timeframe = "1m"
[detectors.zscore]
threshold = {{ policy = "static", value = 8.0 }}
params = {{ window = 120 }}
[telegram]
token = "{tg.token}"
base_url = "{tg.base_url}"
base_file_url = "{tg.base_file_url}"
allowed_chat_ids = [{CHAT}]
[alerts]
cooldown_minutes = 0
chart_dir = "{path.parent / "charts"}"
[scheduler]
close_delay_seconds = 1
history_bars = 300
""")
    return path


async def _start(cfg: Path, crash_at: str | None) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    if crash_at:
        env["VIGIL_CRASH_AT"] = crash_at
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(cfg),
        "--models",
        str(cfg.parent / "models"),
        env=env,
        cwd=str(cfg.parent),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def _wait_until(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.3)
    return False


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
async def test_sigkill_mid_cycle_loses_and_doubles_nothing(tmp_path: Path, crash_at: str) -> None:
    now = pd.Timestamp.now(tz="UTC")
    if now.second > 45:  # keep the whole test inside one minute's bars where possible
        await asyncio.sleep(61 - now.second)
        now = pd.Timestamp.now(tz="UTC")
    now_min = now.floor("1min")
    frames = _frames(now_min)
    last_closed = int(now_min.value // 10**6) - 60_000
    db = tmp_path / "vigil.db"
    _engine, factory = open_database(f"sqlite:///{db}")
    with factory.begin() as s:  # the bot last finished a cycle 40 minutes ago
        s.add(Cycle(timeframe="1m", until_ms=last_closed + 60_000 - 40 * 60_000, finished_at=utcnow()))

    async with FakeBinance(frames) as ex, FakeTelegram() as tg:
        cfg = _config(tmp_path / "config.toml", db, ex, tg)
        first = await _start(cfg, crash_at)
        _out, err = await asyncio.wait_for(first.communicate(), timeout=120)
        assert first.returncode == -signal.SIGKILL, err.decode()[-3000:]

        second = await _start(cfg, None)
        expected = sum(len(v) for v in SPIKE_AGO.values())

        def delivered() -> bool:
            with factory() as s:
                pending = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status != "sent"))
                sent = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent"))
            return pending == 0 and sent >= expected

        ok = await _wait_until(delivered, timeout=120)
        second.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(second.communicate(), timeout=60)
        assert ok, err.decode()[-3000:]
        assert second.returncode == 0, err.decode()[-3000:]

    spike_bars = {(sym, last_closed - ago * 60_000) for sym, agos in SPIKE_AGO.items() for ago in agos}
    with factory() as s:
        events = s.scalars(select(Event)).all()
        alerts = s.scalars(select(Alert)).all()
        deliveries = s.scalars(select(Delivery)).all()
        for symbol in SYMBOLS:
            stored = s.scalars(select(Candle.ts).where(Candle.symbol == symbol).order_by(Candle.ts)).all()
            assert len(stored) == len(set(stored))
            assert np.all(np.diff(stored) == 60_000)  # no holes
            assert stored[-1] >= last_closed  # nothing lost (the restart may have seen a newer minute)
            assert stored[-1] < int(pd.Timestamp.now(tz="UTC").floor("1min").value // 10**6)  # never the open bar
    assert spike_bars <= {(e.symbol, e.bar_ts) for e in events}
    assert len({(e.symbol, e.detector, e.bar_ts) for e in events}) == len(events)
    assert len(deliveries) == len(alerts) and all(d.status == "sent" for d in deliveries)
    ours = [c for c in tg.calls(ok_only=True) if int(c.params.get("chat_id", 0)) == CHAT]
    texts = [c.params["text"] for c in ours if c.method == "sendMessage"]
    charts = [c.params["caption"] for c in ours if c.method == "sendPhoto"]
    assert len(texts) == len(alerts)  # every alert's text exactly once
    assert len(set(texts)) == len(texts)
    assert len(charts) == len(set(charts)) == len(alerts)  # and its chart exactly once (the stop flushes them)
    assert all(d.chart_status == "sent" for d in deliveries)
