"""From detector scores to events: the pure middle of every cycle.

A detector says how strange each bar is; this module decides which bars
become events. Keeping it pure (frames in, ``NewEvent`` list out) means the
live loop, the demo and the walk-forward backtest make the same decisions.

Severity is how far a score clears its threshold: under 1.5x is low, under
3x medium, beyond that high. It is relative so that one rule serves detectors
whose scores live on different scales (z-scores, reconstruction errors). A
classifier's probability is judged on its own scale (see ``severity_for``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from storage.events import NewEvent
from storage.models import Severity

__all__ = ["bar_context", "events_from_scores", "severity_for"]

_MEDIUM_RATIO = 1.5
_HIGH_RATIO = 3.0


def severity_for(score: float, threshold: float, *, probability: bool = False) -> Severity:
    """Severity of a score that cleared ``threshold``.

    Probabilities (a classifier's P(pump)) are judged on their own scale: a
    tuned threshold can be far below 0.5, and a ratio to it would call every
    hit high.
    """
    if probability:
        return Severity.HIGH if score >= 0.8 else Severity.MEDIUM if score >= 0.5 else Severity.LOW
    if threshold > 0:
        ratio = score / threshold
    else:  # thresholds at or below zero: fall back to the absolute margin
        ratio = 1.0 + (score - threshold)
    if ratio >= _HIGH_RATIO:
        return Severity.HIGH
    if ratio >= _MEDIUM_RATIO:
        return Severity.MEDIUM
    return Severity.LOW


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


def events_from_scores(
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    detector: str,
    frame: pd.DataFrame,
    scores: pd.Series,
    thresholds: pd.Series | float,
    since: pd.Timestamp | None = None,
    model_version: str | None = None,
    kind: str = "anomaly",
    min_severity: Severity = Severity.LOW,
    extra: Mapping[str, Any] | None = None,
) -> list[NewEvent]:
    """Events for the bars at or after ``since`` whose score exceeds its threshold.

    ``scores`` and ``thresholds`` are aligned to bar open times (a subset of
    ``frame.index``); NaN scores (warm-up) never fire.
    """
    thr = thresholds if isinstance(thresholds, pd.Series) else pd.Series(float(thresholds), index=scores.index)
    thr = thr.reindex(scores.index)
    fired = scores.notna() & thr.notna() & (scores > thr)
    if since is not None:
        fired &= scores.index >= since
    order = [Severity.LOW, Severity.MEDIUM, Severity.HIGH]
    events = []
    for ts in scores.index[fired.to_numpy()]:  # events are rare: this loop is over hits, not bars
        score, threshold = float(scores.loc[ts]), float(thr.loc[ts])
        sev = severity_for(score, threshold, probability=kind == "pump_dump")
        if order.index(sev) < order.index(min_severity):
            continue
        details = bar_context(frame, ts)
        if extra:
            details.update(extra)
        events.append(
            NewEvent(
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                detector=detector,
                bar_ts=int(ts.value // 1_000_000),
                score=score,
                threshold=threshold,
                severity=sev.value,
                kind=kind,
                details=details,
                model_version=model_version,
            )
        )
    return events
