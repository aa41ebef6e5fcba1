"""Per-bar pump targets and negative sampling for training ``pump_dump`` on labelled candles.

The synthetic market (and ``vigil pumpdump build-dataset``) label pumps as ``symbol, start,
end, kind`` intervals; these pure functions turn them into per-bar 0/1 targets and pick which
negative bars a capped training set keeps.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["hard_negative_rows", "pump_rows", "sample_negatives"]


def pump_rows(candles: pd.DataFrame, labels: pd.DataFrame, symbol: str) -> np.ndarray:
    """Per-bar 0/1 target "pump now": from a ``pump_dump`` label's start to its price peak (inclusive).

    Parameters
    ----------
    candles : candle frame of ``symbol``, shape (n, >=5)
    labels : DataFrame ``symbol, start, end, kind``

    Returns
    -------
    ndarray of int, shape (n,)
    """
    y = np.zeros(len(candles), dtype=np.int64)
    rows = labels[(labels["symbol"] == symbol) & (labels["kind"] == "pump_dump")]
    index = pd.DatetimeIndex(candles.index)
    for start, end in zip(pd.to_datetime(rows["start"], utc=True), pd.to_datetime(rows["end"], utc=True), strict=True):
        inside = (index >= start) & (index <= end)
        if not inside.any():
            continue
        peak = candles.loc[inside, "high"].idxmax()
        y[(index >= start) & (index <= peak)] = 1
    return y


def sample_negatives(neg: np.ndarray, cap: int, rng: np.random.Generator, hard: np.ndarray | None = None) -> np.ndarray:
    """At most ``cap`` of the negative row ids ``neg``, shape (<= cap,).

    Without ``hard`` a plain random draw. With ``hard`` (bool per row of the whole data set) the
    hard negatives among ``neg`` are kept first (randomly thinned only if they alone exceed the
    cap) and random easy ones fill the rest. Why: other planted anomalies (level shifts, flash
    crashes, volume spikes) and the dump after a pump are a few per cent of the bars, so a random
    draw shows the network few of the very cases it must not take for a pump.
    """
    if len(neg) <= cap:
        return neg
    if hard is None:
        return rng.choice(neg, size=cap, replace=False)
    is_hard = hard[neg]
    hard_ids, easy_ids = neg[is_hard], neg[~is_hard]
    if len(hard_ids) >= cap:
        return rng.choice(hard_ids, size=cap, replace=False)
    return np.concatenate([hard_ids, rng.choice(easy_ids, size=cap - len(hard_ids), replace=False)])


def hard_negative_rows(candles: pd.DataFrame, labels: pd.DataFrame, symbol: str, after: int = 3) -> np.ndarray:
    """Bool per bar, shape (n,): inside a non-pump label or after a pump's peak, up to ``after`` bars past its end.

    These are the bars most easily mistaken for a pump (see ``sample_negatives``); faults
    (gap, stale) count too, since the bars right after them jump.
    """
    index = pd.DatetimeIndex(candles.index)
    hard = np.zeros(len(candles), dtype=bool)
    rows = labels[labels["symbol"] == symbol]
    if rows.empty or len(index) == 0:
        return hard
    y = pump_rows(candles, labels, symbol)
    step = pd.Timedelta(np.median(np.diff(index.as_unit("ns").asi8)), "ns") if len(index) > 1 else pd.Timedelta(0)
    for start, end in zip(pd.to_datetime(rows["start"], utc=True), pd.to_datetime(rows["end"], utc=True), strict=True):
        hard |= (index >= start) & (index <= end + after * step)
    return hard & (y == 0)
