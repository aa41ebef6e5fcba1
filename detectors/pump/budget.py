"""An alert budget instead of a fixed cut-off: the threshold that keeps quiet markets quiet.

A pump detector's best-F1 threshold comes from data where pumps are common; a chat watching
fifty coins that rarely pump sees mostly its false alarms. So the threshold is calibrated the
other way round: on series *without* pumps (real candles, pump-free trade chunks), pick the
lowest threshold at which alert episodes stay under a budget, by default 0.1 per symbol-week
(one false alert per ten symbol-weeks). Recall is then reported at that threshold.

An *episode* is what a user is messaged about: a run of alarmed bars, where runs separated by
fewer than ``merge_gap`` quiet bars count as one (the live stream merges them the same way).
Counting episodes for every candidate threshold is vectorised: episode starts at threshold ``t``
are the bars whose score exceeds ``t`` while the preceding ``merge_gap`` bars' maximum does not,
so ``episodes(t) = #{i : gap_max_i <= t < s_i}``, two sorted arrays and a ``searchsorted``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["BudgetCurve", "budget_curve", "episodes_at", "run_starts"]

WEEK_MS = 7 * 86_400_000


def _prior_max(scores: np.ndarray, merge_gap: int) -> np.ndarray:
    """Per bar, the max of the ``merge_gap`` bars before it (-inf at the start; NaN counts as -inf)."""
    s = np.where(np.isnan(scores), -np.inf, scores)
    if merge_gap < 1:
        raise ValueError(f"merge_gap must be >= 1, got {merge_gap}")
    padded = np.r_[np.full(merge_gap, -np.inf), s[:-1]] if len(s) else s
    if len(s) == 0:
        return s
    windows = np.lib.stride_tricks.sliding_window_view(padded, merge_gap)
    return windows.max(axis=1)


def run_starts(alarms: np.ndarray, merge_gap: int = 1) -> np.ndarray:
    """Bool per bar: an alarm with no alarm among the ``merge_gap`` bars before it (an episode starts)."""
    a = np.asarray(alarms, dtype=bool)
    prior = _prior_max(a.astype(float), merge_gap) > 0
    return a & ~prior


def episodes_at(scores: np.ndarray, thresholds: np.ndarray, merge_gap: int = 1) -> np.ndarray:
    """Number of alert episodes of one series at each threshold (alarm = score > threshold)."""
    s = np.where(np.isnan(scores), -np.inf, np.asarray(scores, dtype=float))
    lo = _prior_max(s, merge_gap)
    ok = s > lo
    lo, hi = np.sort(lo[ok]), np.sort(s[ok])
    t = np.asarray(thresholds, dtype=float)
    return np.searchsorted(lo, t, side="right") - np.searchsorted(hi, t, side="right")


@dataclass(frozen=True)
class BudgetCurve:
    """Alert episodes per symbol-week on the calibration series, for a grid of thresholds.

    ``thresholds`` ascending, ``rates`` (non-increasing in practice) the episodes per
    symbol-week at each; ``weeks`` the symbol-weeks the rates are measured on.
    """

    thresholds: np.ndarray
    rates: np.ndarray
    weeks: float

    def threshold_for(self, budget: float) -> float:
        """The lowest threshold whose rate is at or under ``budget`` (the top of the grid if none)."""
        ok = np.flatnonzero(self.rates <= budget)
        if len(ok) == 0:
            return float(self.thresholds[-1])
        # lowest threshold such that it and every higher one stay within budget
        bad = np.flatnonzero(self.rates > budget)
        first_ok = int(bad[-1]) + 1 if len(bad) else 0
        return float(self.thresholds[min(first_ok, len(self.thresholds) - 1)])

    def rate_at(self, threshold: float) -> float:
        i = int(np.searchsorted(self.thresholds, threshold, side="right")) - 1
        return float(self.rates[max(i, 0)])

    def to_json(self) -> dict[str, object]:
        return {"thresholds": self.thresholds.tolist(), "rates": self.rates.tolist(), "weeks": self.weeks}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> BudgetCurve:
        return cls(np.asarray(data["thresholds"], float), np.asarray(data["rates"], float), float(data["weeks"]))  # type: ignore[arg-type]


def budget_curve(
    series: Sequence[np.ndarray], weeks: Sequence[float], *, merge_gap: int = 1, points: int = 400
) -> BudgetCurve:
    """Episodes per symbol-week over pump-free ``series`` (scores per bar) lasting ``weeks`` each.

    The grid holds the highest scores of all series (every distinct one among the top
    ``points``) plus quantiles below, so the tail, where budgets of 0.01-1 per week live, is exact.
    """
    if not series:
        raise ValueError("budget_curve: no calibration series")
    allv = np.concatenate([np.asarray(s, float) for s in series])
    allv = allv[np.isfinite(allv)]
    if len(allv) == 0:
        raise ValueError("budget_curve: the calibration series have no scores")
    top = np.sort(allv)[-points:]
    grid = np.unique(np.r_[top, np.quantile(allv, np.linspace(0.0, 1.0, 101)), top[-1] + 1e-9])
    total = np.zeros(len(grid))
    for s in series:
        total += episodes_at(np.asarray(s, float), grid, merge_gap)
    w = float(np.sum(weeks))
    if w <= 0:
        raise ValueError("budget_curve: calibration series span no time")
    return BudgetCurve(grid, total / w, w)
