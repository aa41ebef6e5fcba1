"""Stylized facts of a candle series, to compare the synthetic market with real candles.

Pure functions on one candle frame; ``bench/synthetic_facts.py`` prints them
side by side for the generator and ``/work/shared/data/candles``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["FACT_NAMES", "stylized_facts"]

FACT_NAMES: tuple[str, ...] = (
    "excess_kurtosis",
    "acf_abs_lag1",
    "acf_abs_lag1_24",
    "spearman_volume_absret",
    "median_range",
)


def stylized_facts(frame: pd.DataFrame) -> dict[str, float]:
    """The numbers a detector is sensitive to, for one candle frame.

    * ``excess_kurtosis`` of close-to-close log returns (heavy tails; 0 for a normal);
    * ``acf_abs_lag1`` / ``acf_abs_lag1_24``: autocorrelation of ``|return|`` at
      lag 1 and its mean over lags 1..24 (volatility clustering);
    * ``spearman_volume_absret``: rank correlation of volume with ``|return|``;
    * ``median_range``: median of ``(high - low) / open`` per bar.
    """
    ret = np.log(frame["close"]).diff().iloc[1:]
    absret = ret.abs()
    return {
        "excess_kurtosis": float(ret.kurt()),
        "acf_abs_lag1": float(absret.autocorr(1)),
        "acf_abs_lag1_24": float(np.mean([absret.autocorr(lag) for lag in range(1, 25)])),
        "spearman_volume_absret": float(frame["volume"].iloc[1:].corr(absret, method="spearman")),
        "median_range": float(((frame["high"] - frame["low"]) / frame["open"]).median()),
    }
