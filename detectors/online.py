"""Scoring a whole file causally, as a live detector would have: fit on the first rows, then
optionally refit on a rolling window of past rows every ``refit_every`` rows.

This is what ``vigil score`` and ``bench/eval_nab.py`` run. With refits, the rows after each
refit point are scored by the model fitted on rows before it only (the scoring context reaches
back over the warm-up, which is also in the past), so every score still depends on earlier rows
only; the threshold policy is then applied once to the whole causal score series (its own
state is causal too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DetectorError
from detectors.base import SeriesDetector
from detectors.thresholds import make_threshold

__all__ = ["OnlineResult", "apply_policy", "calibration_rows", "score_online"]


@dataclass(frozen=True)
class OnlineResult:
    """Scores and alarms per input row, the threshold per row, and the fitted detectors' refit points."""

    scores: pd.Series
    alarms: pd.Series
    thresholds: pd.Series
    refits: list[int]  # row positions where a model was (re)fitted: rows before it were its training data
    detector: SeriesDetector  # the last fitted detector
    calibration: np.ndarray  # the scores the threshold policy was fitted on (held-out training rows)


def calibration_rows(det: SeriesDetector, train_rows: int) -> slice:
    """The training rows whose scores fit the threshold (as ``Detector.fit`` picks them for one series)."""
    n_cal = int(train_rows * det.calibration_fraction)
    return slice(train_rows - n_cal, train_rows) if n_cal > det.warmup + 10 else slice(0, train_rows)


def apply_policy(cfg: dict[str, Any], scores: pd.Series, calibration: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Alarms and thresholds of a threshold policy ``cfg`` fitted on ``calibration`` scores."""
    policy = make_threshold(cfg)
    if policy.policy != "static":
        policy.fit(calibration)
    return policy.is_anomaly(scores), policy.thresholds(scores)


def score_online(
    make: Callable[[], SeriesDetector],
    frame: pd.DataFrame,
    *,
    train_rows: int,
    refit_every: int | None = None,
    refit_window: int | None = None,
) -> OnlineResult:
    """Fit on ``frame[:train_rows]``, score every row causally, alarm with the first model's policy.

    ``refit_every`` (rows): refit a fresh detector at ``train_rows + k * refit_every`` on the
    previous ``refit_window`` rows (default: all previous rows) and score the following rows
    with it. The threshold policy fitted with the first model judges the whole series (a
    rolling policy such as ``likelihood`` keeps adapting to the refitted models' scores).
    """
    n = len(frame)
    if not 0 < train_rows <= n:
        raise DetectorError(f"train_rows must be in 1..{n}, got {train_rows}")
    if refit_every is not None and refit_every < 1:
        raise DetectorError(f"refit_every must be >= 1 row, got {refit_every}")
    first = make()
    first.fit(frame.iloc[:train_rows])  # also for untrained detectors: the scaling and the threshold
    points = [train_rows]
    if refit_every:
        points += list(range(train_rows + refit_every, n, refit_every))
    scores = np.full(n, np.nan)
    det = first
    for i, start in enumerate(points):
        end = points[i + 1] if i + 1 < len(points) else n
        if i > 0:
            lo = 0 if refit_window is None else max(0, start - refit_window)
            det = make()
            det.fit(frame.iloc[lo:start])
        if i == 0:
            part = det.score(frame.iloc[:end]).to_numpy()
            scores[:end] = part
        else:
            ctx = max(0, start - det.warmup)
            part = det.score(frame.iloc[ctx:end]).to_numpy()
            scores[start:end] = part[start - ctx :]
    series = pd.Series(scores, index=frame.index, name="score")
    alarms = first.is_anomaly(series)
    cal = scores[calibration_rows(first, train_rows)]
    return OnlineResult(series, alarms, first.thresholds(series), points, det, cal[np.isfinite(cal)])
