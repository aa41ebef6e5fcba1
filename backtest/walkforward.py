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

Works with any object following the detector contract in HELPERS.md
(``fit(frames)``, ``score(frame)``, ``is_anomaly(scores)``, ``warmup``,
``name``); detectors are made by ``detectors.registry.create_detector``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from core.errors import BacktestError

__all__ = ["DetectorLike", "detector_factory", "walk_forward_events"]

log = logging.getLogger(__name__)


class DetectorLike(Protocol):
    name: str
    warmup: int

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> Any: ...
    def score(self, frame: pd.DataFrame) -> pd.Series: ...
    def is_anomaly(self, scores: pd.Series) -> pd.Series: ...


def detector_factory(name: str, params: Mapping[str, Any] | None = None) -> Callable[[], DetectorLike]:
    """A zero-argument maker of fresh, unfitted detectors from the registry."""
    try:
        from detectors.registry import create_detector
    except ImportError as err:  # the detectors package lands separately
        raise BacktestError(f"walk-forward needs detectors.registry, which is not available: {err}") from None
    create_detector(name, **dict(params or {}))  # fail early on a bad name or parameter
    return lambda: create_detector(name, **dict(params or {}))


def walk_forward_events(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    make_detector: Callable[[], DetectorLike],
    *,
    train_bars: int,
    retrain_every: int,
    symbol: str = "",
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
            flags = detector.is_anomaly(scores)
            in_fold = scores.index >= index[start]
            hit = (flags.to_numpy(dtype=bool) & in_fold) & np.isfinite(scores.to_numpy(dtype=float))
            if not hit.any():
                continue
            thresholds = _thresholds(detector, scores)
            picked = scores[hit]
            rows.append(
                pd.DataFrame(
                    {
                        "timestamp": picked.index,
                        "score": picked.to_numpy(dtype=float),
                        "detector": getattr(detector, "name", type(detector).__name__),
                        "symbol": sym,
                        "severity": _severity(picked.to_numpy(dtype=float), thresholds[hit]),
                        "threshold": thresholds[hit],
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


def _thresholds(detector: DetectorLike, scores: pd.Series) -> np.ndarray:
    """The causal threshold per point when the detector exposes one, else NaN."""
    fn = getattr(detector, "thresholds", None)
    if fn is None:
        return np.full(len(scores), np.nan)
    return np.asarray(fn(scores), dtype=float)


def _severity(scores: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``high`` at twice the threshold, ``medium`` at 1.5x, else ``low`` (``low`` when unknown)."""
    ratio = np.where(np.isfinite(thresholds) & (thresholds > 0), scores / np.where(thresholds > 0, thresholds, 1), 1.0)
    return np.where(ratio >= 2, "high", np.where(ratio >= 1.5, "medium", "low"))
