from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.runtime.events import events_from_alarms
from bot.runtime.logs import RedactingFilter, redact
from bot.runtime.scheduler import next_run_time
from detectors.alarms import alarms
from feeds.replay import ReplayFeed


def _frame(n: int = 48, start: str = "2024-01-01") -> pd.DataFrame:
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    close = np.linspace(100, 110, n)
    return pd.DataFrame(
        {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": np.full(n, 10.0)}, index=idx
    )


def test_events_carry_the_alarms_after_since_with_bar_context() -> None:
    frame = _frame()
    frame.iloc[40, frame.columns.get_loc("volume")] = 50.0
    scores = pd.Series(1.0, index=frame.index)
    scores.iloc[:5] = np.nan  # warm-up
    scores.iloc[[10, 40, 41]] = [9.0, 9.0, 3.0]
    events = events_from_alarms(
        alarms(scores, 4.0),
        exchange="x",
        symbol="A/B",
        timeframe="1h",
        detector="zscore",
        frame=frame,
        since=frame.index[20],
    )
    assert [e.bar_ts for e in events] == [frame.index[40].value // 10**6]
    assert events[0].details["volume_multiple"] == pytest.approx(5.0)
    assert (events[0].score, events[0].threshold, events[0].severity) == (9.0, 4.0, "medium")


async def test_replay_feed_never_serves_an_unclosed_bar() -> None:
    frame = _frame(10)
    feed = ReplayFeed("replay", {"A/B": frame}, "1h")
    t5_close = int(frame.index[5].value // 10**6) + 3_600_000
    got = await feed.fetch_closed_candles("A/B", "1h", None, now_ms=t5_close)
    assert list(got.index) == list(frame.index[:6])
    got = await feed.fetch_closed_candles("A/B", "1h", None, now_ms=t5_close - 1)
    assert list(got.index) == list(frame.index[:5])


async def test_replay_feed_rejects_unknown_symbol() -> None:
    from core.errors import BadSymbolError

    feed = ReplayFeed("replay", {"A/B": _frame(3)}, "1h")
    with pytest.raises(BadSymbolError, match="'C/D'"):
        await feed.validate_symbol("C/D")


def test_next_run_time_is_the_next_close_plus_delay() -> None:
    now = datetime(2024, 1, 1, 10, 17, 3, tzinfo=UTC)
    assert next_run_time(now, "1h", 5) == datetime(2024, 1, 1, 11, 0, 5, tzinfo=UTC)
    assert next_run_time(now, "15m", 0) == datetime(2024, 1, 1, 10, 30, tzinfo=UTC)
    assert next_run_time(datetime(2024, 1, 1, 11, tzinfo=UTC), "1h", 2) == datetime(2024, 1, 1, 12, 0, 2, tzinfo=UTC)


def test_redaction_masks_tokens_in_messages_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    assert token not in redact(f"POST https://api.telegram.org/bot{token}/sendMessage")
    assert "hunter2-secret" not in redact("key=hunter2-secret", ["hunter2-secret"])
    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingFilter([token]))
    try:
        raise RuntimeError(f"failed calling /bot{token}/getMe")
    except RuntimeError:
        logger.exception("request to %s failed", f"/bot{token}/getMe")
    logger.filters.clear()
    text = caplog.text
    assert token not in text
    assert "request to" in text and "***" in text


def test_detector_pool_pretrains_pump_dump_with_bench_epochs_unless_configured(tmp_path: Path) -> None:
    from bot.runtime.detector_pool import DetectorPool
    from core.config import default_config
    from storage.db import open_database

    url = f"sqlite:///{tmp_path / 'v.db'}"
    _engine, factory = open_database(url)
    plain = DetectorPool(default_config(database={"url": url}), factory, tmp_path / "m")
    assert plain._create(plain._slots["pump_dump"]).epochs == 15
    configured = default_config(database={"url": url}, detectors={"pump_dump": {"params": {"epochs": 3}}})
    pool = DetectorPool(configured, factory, tmp_path / "m")
    assert pool._create(pool._slots["pump_dump"]).epochs == 3
