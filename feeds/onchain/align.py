"""Put period values (daily chain stats) on the candle grid without look-ahead.

A provider stamps a daily value with the day's *start* (00:00 UTC) but it counts the
whole day, so it exists only once that day has closed (plus any publication delay).
A bar may use a value only if the value was known **before the bar opened**: the
value of day D first reaches the bar opening at D+1 00:00 (for hourly bars), and every
bar of day D sees day D-1's value at best. Values are carried forward (a level, not
a flow per bar) until ``max_age`` periods have passed without a newer one; after that
the bar reads NaN, "unknown", which detectors treat as missing input rather than as a
stale truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["metric_per_bar", "onchain_column"]

PREFIX = "onchain_"


def onchain_column(metric: str) -> str:
    """The frame column of an on-chain metric: ``active_addresses`` -> ``onchain_active_addresses``."""
    return f"{PREFIX}{metric}"


def metric_per_bar(
    series: pd.Series,
    index: pd.DatetimeIndex,
    *,
    period_ms: int,
    delay_ms: int = 0,
    max_age: float = 3.0,
) -> pd.Series:
    """The latest value known before each bar opened, NaN when none is (or it is too old).

    Parameters
    ----------
    series : values stamped with their period's start (UTC index).
    index : bar open times (UTC), sorted.
    period_ms : length of the period a value describes (a day for daily stats).
    delay_ms : publication delay after the period closes.
    max_age : periods after which a value is no longer carried forward.
    """
    out = pd.Series(np.nan, index=index, dtype="float64")
    values = series.to_numpy(dtype="float64")
    keep = np.isfinite(values)
    if len(index) == 0 or not keep.any():
        return out
    stamps = pd.DatetimeIndex(series.index).as_unit("ms").asi8[keep]
    order = np.argsort(stamps, kind="stable")
    known = stamps[order] + period_ms + delay_ms
    vals = values[keep][order]
    bars = pd.DatetimeIndex(index).as_unit("ms").asi8
    pos = np.searchsorted(known, bars, side="right") - 1
    ok = pos >= 0
    fresh = np.zeros(len(bars), dtype=bool)
    fresh[ok] = bars[ok] - known[pos[ok]] < max_age * period_ms
    out.iloc[np.flatnonzero(fresh)] = vals[pos[fresh]]
    return out
