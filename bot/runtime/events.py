"""From alarms to stored events: the bar context a reader of an alert wants, and nothing else.

Which bars fire and how severe they are is decided by ``detectors.alarms``
(the rule the backtests share); this module only turns those alarms into
``NewEvent`` rows with what the alert text shows about the bar.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from storage.events import NewEvent

__all__ = ["bar_context", "events_from_alarms", "group_context", "queue_for_targets"]


def bar_context(frame: pd.DataFrame, ts: pd.Timestamp, baseline: int = 24) -> dict[str, Any]:
    """What a reader of the alert wants to know about the bar, beyond the score.

    Price change of the bar, and volume / social volume as multiples of their
    median over the preceding ``baseline`` bars (only past bars: no look-ahead).
    """
    pos = frame.index.get_loc(ts)
    row = frame.iloc[pos]
    past = frame.iloc[max(0, pos - baseline) : pos]
    out: dict[str, Any] = {
        "close": float(row["close"]),
        "price_change": float(row["close"] / row["open"] - 1.0) if row["open"] else None,
    }
    vol_med = float(past["volume"].median()) if len(past) else float("nan")
    out["volume_multiple"] = float(row["volume"] / vol_med) if vol_med and np.isfinite(vol_med) else None
    if "social_volume" in frame and pd.notna(row.get("social_volume")):
        soc_med = float(past["social_volume"].median()) if len(past) else float("nan")
        out["social_multiple"] = float(row["social_volume"] / soc_med) if soc_med and np.isfinite(soc_med) else None
    return out


def group_context(frame: pd.DataFrame, ts: pd.Timestamp, own: str) -> dict[str, Any]:
    """For a member of an asset group: every venue's close at the bar and this venue's gap to their median.

    Empty for a frame without peers. ``venues`` maps ``exchange:symbol`` to its close (None where the
    venue had no bar), which is what the alert text and the all-venues chart read back.
    """
    from detectors.groups import peer_column, peer_venues

    peers = peer_venues(frame)
    if not peers:
        return {}
    row = frame.loc[ts]
    closes = {own: float(row["close"])}
    for peer in peers:
        value = row[peer_column("close", peer)]
        closes[peer] = float(value) if pd.notna(value) else None
    known = np.array([v for v in closes.values() if v is not None], dtype="float64")
    median = float(np.exp(np.median(np.log(known)))) if len(known) else float("nan")
    gap = float(closes[own] / median - 1.0) if median and np.isfinite(median) else None
    return {"venues": closes, "group_gap": gap}


def events_from_alarms(
    alarms: pd.DataFrame,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    detector: str,
    frame: pd.DataFrame,
    since: pd.Timestamp | None = None,
    model_version: str | None = None,
    kind: str = "anomaly",
    extra: Mapping[str, Any] | None = None,
) -> list[NewEvent]:
    """One event per alarm (``detectors.alarms`` output) at or after ``since``."""
    if since is not None:
        alarms = alarms[alarms.index >= since]
    events = []
    for ts, row in alarms.iterrows():  # alarms are rare: this loop is over hits, not bars
        details = bar_context(frame, ts)
        details.update(group_context(frame, ts, f"{exchange}:{symbol}"))
        if extra:
            details.update(extra)
        events.append(
            NewEvent(
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                detector=detector,
                bar_ts=int(pd.Timestamp(ts).value // 1_000_000),
                score=float(row["score"]),
                threshold=float(row["threshold"]),
                severity=str(row["severity"]),
                kind=kind,
                details=details,
                model_version=model_version,
            )
        )
    return events


def queue_for_targets(
    session: Session, new: Sequence[Any], targets: Sequence[tuple[str, int]], cooldown_minutes: int, now: datetime
) -> list[Any]:
    """Queue alerts for newly stored events to every (channel, chat) target; the candle cycle and the
    stream job both call this, in the transaction that stored the events."""
    if not new or not targets:
        return []
    from storage.outbox import queue_alerts

    alerts: list[Any] = []
    by_channel: dict[str, list[int]] = {}
    for channel, chat_id in targets:
        by_channel.setdefault(channel, []).append(chat_id)
    for channel, chat_ids in by_channel.items():
        alerts += queue_alerts(
            session,
            list(new),
            chat_ids=chat_ids,
            channel=channel,
            cooldown=timedelta(minutes=cooldown_minutes),
            now=now,
        )
    return alerts
