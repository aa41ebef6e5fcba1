"""Put social samples on the candle grid: mentions per bar, NaN where unknown.

Sources sample at their own pace (hourly, daily, irregular posts); detectors
want one number per bar. Samples are summed into the bar whose open time is
at or before them, so a bar only ever sees mentions made while it was open
(no look-ahead). Bars with no sample at all stay NaN ("unknown"), which is
different from 0 ("nobody talked"): a source that is down must not look
like silence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.timeframes import timeframe_to_ms

__all__ = ["attach_social", "social_per_bar"]


def social_per_bar(series: pd.Series, index: pd.DatetimeIndex, timeframe: str) -> pd.Series:
    """Sum of samples per bar of ``index`` (bar open times); NaN for bars with no sample.

    Parameters
    ----------
    series : Series, shape (m,)
        Samples on a UTC DatetimeIndex.
    index : DatetimeIndex, shape (n,)
        Bar open times (UTC), sorted.
    """
    step = timeframe_to_ms(timeframe)
    out = pd.Series(np.nan, index=index, name="social_volume", dtype="float64")
    if series.empty or len(index) == 0:
        return out
    ts = series.index.as_unit("ms").asi8
    bars = index.as_unit("ms").asi8
    pos = np.searchsorted(bars, ts, side="right") - 1  # the bar that opened at or before each sample
    inside = (pos >= 0) & (ts < bars[np.clip(pos, 0, None)] + step)
    values = series.to_numpy(dtype="float64")
    keep = inside & np.isfinite(values)
    sums = np.bincount(pos[keep], weights=values[keep], minlength=len(bars))
    seen = np.bincount(pos[keep], minlength=len(bars)) > 0
    out.iloc[np.flatnonzero(seen)] = sums[seen]
    return out


def attach_social(candles: pd.DataFrame, series: pd.Series, timeframe: str) -> pd.DataFrame:
    """A copy of ``candles`` with a ``social_volume`` column (see :func:`social_per_bar`)."""
    out = candles.copy()
    out["social_volume"] = social_per_bar(series, pd.DatetimeIndex(candles.index), timeframe).to_numpy()
    return out
