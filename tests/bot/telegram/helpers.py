"""Small helpers for the bot tests: talk to the bot through the fake, make candles and events."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from storage.candles import upsert_candles
from storage.events import NewEvent, insert_events
from storage.models import Event
from tests.fakes.telegram import FakeTelegram

H = 3_600_000


def candles(n: int = 72, start: str = "2024-01-01", seed: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    """An hourly random-walk frame; ``spike_at`` puts a pump (price +8 %, volume x10) on that bar."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(start, periods=n, freq="1h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.005, n)))
    volume = rng.uniform(10, 20, n)
    if spike_at is not None:
        close[spike_at:] *= 1.08
        volume[spike_at] *= 10
    open_ = np.r_[close[0], close[:-1]]
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.002,
            "low": np.minimum(open_, close) * 0.998,
            "close": close,
            "volume": volume,
        },
        index=idx,
    )


def store(
    factory: sessionmaker[Session], symbol: str, frame: pd.DataFrame, fired: list[tuple[int, str, float]]
) -> list[Event]:
    """Store candles and events ``(bar index, detector, score)`` with threshold 4; return the new events.

    Each event's severity comes from the one alarm rule (``detectors.alarms.severity_for``), as in a cycle.
    """
    from detectors.alarms import severity_for

    with factory.begin() as s:
        upsert_candles(s, "binance", symbol, "1h", frame)
        evs = [
            NewEvent(
                "binance",
                symbol,
                "1h",
                det,
                int(frame.index[i].value // 1_000_000),
                score,
                4.0,
                severity=severity_for(score, 4.0).value,
            )
            for i, det, score in fired
        ]
        return insert_events(s, evs)


async def say(
    tg: FakeTelegram, text: str, *, chat_id: int, user_id: int | None = None, chat_type: str = "private", n: int = 1
) -> list[str]:
    """Send ``text`` from a user and return the bot's next ``n`` replies to that chat."""
    before = len(tg.replies_text(chat_id))
    tg.push_message(text, chat_id=chat_id, user_id=user_id or chat_id, chat_type=chat_type)
    await tg.wait_for(lambda: len(tg.replies_text(chat_id)) >= before + n)
    return tg.replies_text(chat_id)[before:]


def tiny_png() -> bytes:
    from bot.alerts.charts import render_alert_chart

    return render_alert_chart(candles(30), title="equity")
