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

import numpy as np
import pandas as pd

from bot.errors import DetectorError
from detectors.base import Detector

__all__ = ["OnlineResult", "score_online"]


@dataclass(frozen=True)
class OnlineResult:
    """Scores and alarms per input row, the threshold per row, and the fitted detectors' refit points."""

    scores: pd.Series
    alarms: pd.Series
    thresholds: pd.Series
    refits: list[int]  # row positions where a model was (re)fitted: rows before it were its training data
    detector: Detector  # the last fitted detector


def score_online(
    make: Callable[[], Detector],
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
    if first.requires_training or first.threshold_.policy != "static":
        first.fit(frame.iloc[:train_rows])
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
    return OnlineResult(series, alarms, first.thresholds(series), points, det)
