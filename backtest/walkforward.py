"""Walk-forward event generation: detectors retrained on rolling windows of the past only.

Stored events were produced by whatever model was live at the time, which
is fine for judging the live system; to judge a *detector* over history,
its model must never have seen the bars it flags. This module cuts history
into folds: for the fold starting at bar ``s`` a fresh detector is fitted on
bars ``[s - train_bars, s)`` (every symbol, one shared model, as the runtime
does), then scores bars ``[s, s + retrain_every)``. The frame handed to
``score`` ends at the fold's last bar and scores are causal (appending rows
never changes earlier scores), so each event depends only on data up to its
own bar, and each model only on data before its fold.

Works with any :class:`detectors.base.Detector` (made by
``detectors.create_detector``). Alarms and their severities come from
:func:`detectors.alarms.detector_alarms`, the rule the live cycle uses, so a
walk-forward backtest trades the alerts a user would have received.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from core.errors import BacktestError
from detectors import Detector, create_detector, detector_alarms

__all__ = ["detector_factory", "walk_forward_events"]

log = logging.getLogger(__name__)


def detector_factory(name: str, params: Mapping[str, Any] | None = None) -> Callable[[], Detector]:
    """A zero-argument maker of fresh, unfitted detectors from the registry."""
    create_detector(name, **dict(params or {}))  # fail early on a bad name or parameter
    return lambda: create_detector(name, **dict(params or {}))


def walk_forward_events(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    make_detector: Callable[[], Detector],
    *,
    train_bars: int,
    retrain_every: int,
    symbol: str = "",
    min_severity: str = "low",
    progress: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Events a detector would have raised, each from a model trained only on earlier bars.

    Parameters
    ----------
    candles : DataFrame or mapping of symbol to DataFrame
        Candle frames (same index for every symbol).
    make_detector : callable
        Returns a fresh unfitted detector per fold.
    train_bars : int
        Length of the rolling training window, in bars.
    retrain_every : int
        Length of each scored fold, in bars (the model is refitted this often).
    min_severity : str
        Alarms below this severity are left out, as the live loop's ``alerts.min_severity`` does.
    progress : callable, optional
        Called as ``progress(done_folds, total_folds)``.

    Returns
    -------
    DataFrame
        Columns ``timestamp, score, detector, symbol, severity, threshold`` (one row per
        flagged bar; ``timestamp`` is the open time of the bar whose close revealed it),
        plus ``fold_start`` (first bar the model was not trained on).
    """
    frames = dict(candles) if isinstance(candles, Mapping) else {symbol.upper(): candles}
    if train_bars < 2 or retrain_every < 1:
        raise BacktestError(
            f"walk-forward: train_bars={train_bars} must be >= 2 and retrain_every={retrain_every} >= 1"
        )
    index = next(iter(frames.values())).index
    n = len(index)
    if n <= train_bars:
        raise BacktestError(f"walk-forward: {n} bars leave nothing to test after train_bars={train_bars}")
    starts = list(range(train_bars, n, retrain_every))
    rows: list[pd.DataFrame] = []
    for fold, start in enumerate(starts):
        stop = min(start + retrain_every, n)
        detector = make_detector()
        detector.fit({s: f.iloc[start - train_bars : start] for s, f in frames.items()})
        for sym, frame in frames.items():
            context = frame.iloc[max(0, start - train_bars) : stop]  # warm-up context, then the fold
            scores = detector.score(context)
            fired = detector_alarms(detector, scores, min_severity=min_severity)
            fired = fired[fired.index >= index[start]]
            if fired.empty:
                continue
            rows.append(
                pd.DataFrame(
                    {
                        "timestamp": fired.index,
                        "score": fired["score"].to_numpy(dtype=float),
                        "detector": detector.name,
                        "symbol": sym,
                        "severity": fired["severity"].to_numpy(),
                        "threshold": fired["threshold"].to_numpy(dtype=float),
                        "fold_start": index[start],
                    }
                )
            )
        if progress is not None:
            progress(fold + 1, len(starts))
    if not rows:
        return pd.DataFrame(columns=["timestamp", "score", "detector", "symbol", "severity", "threshold", "fold_start"])
    out = pd.concat(rows, ignore_index=True)
    log.info("walk-forward: %d folds, %d events", len(starts), len(out))
    return out.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
