"""The ``likelihood`` threshold policy (Numenta's anomaly likelihood) and incident suppression.

Numenta's detector (Ahmad et al. 2017, "Unsupervised real-time anomaly detection for streaming
data") does not threshold its raw anomaly score. It asks how unlikely the *recent mean* score
is given the score's own recent history: the mean of the last ``short`` scores is compared with
a Gaussian fitted to the same short means over the previous ``window`` rows, and an alarm
needs a tail probability below ``probability``. The alarm level thus follows each series' own
noise: a noisy series (or a model that fits it badly) raises its bar, a quiet one lowers it,
and a level shift that persists becomes the new normal once it fills the window.

Here the policy compares ``transform(scores)`` (the short mean) with
``thresholds(scores) = mu + z * max(sd, min_scale)``, ``z = Phi^-1(1 - probability)``, where
``mu, sd`` are the mean and standard deviation (or median and 1.4826 MAD with ``robust``) of
the short means of the previous ``window`` rows: strictly past rows, so a spike cannot raise
its own bar. The history starts with the tail of the training scores (as telemanom's policy),
so the first scored rows already have a bar. Vectorised over rows (cumulative sums, or
pandas' rolling median for the robust fit).

``record`` (rows, 0 = off) adds one more condition: the short mean must also exceed the highest
short mean of the previous ``record`` rows. The Gaussian tail test alone fires again and again on a
pattern that recurs, such as an error spike at the same hour every day: rare rows make a skewed
distribution whose mean and spread sit far below them. What the series already did within
``record`` rows is no news. The raw-series default sets it to 576 rows (two days of 5-minute rows).

``suppress`` (rows; any policy, :func:`detectors.alarms.suppress_repeats`) drops a new alarm
run that starts within ``suppress`` rows of the start of the previous kept run: one incident,
one alert (Merlion's alarm suppression).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detectors.thresholds import ThresholdPolicy

__all__ = ["LikelihoodThreshold", "tail_probability"]


def tail_probability(z: np.ndarray | float) -> np.ndarray:
    """Upper-tail probability of a standard normal, ``Q(z) = P(Z > z)``."""
    from scipy.special import ndtr

    return ndtr(-np.asarray(z, dtype="float64"))


class LikelihoodThreshold(ThresholdPolicy):
    """Numenta-style anomaly likelihood on any detector's score (see the module docstring)."""

    policy = "likelihood"

    def __init__(
        self,
        short: int = 10,
        window: int = 2000,
        probability: float = 1e-4,
        robust: bool = False,
        min_scale: float = 0.05,
        min_history: int = 100,
        record: int = 0,
    ) -> None:
        super().__init__()
        if short < 1 or window < 10 or not 0 < probability < 0.5 or min_history < 2 or record < 0:
            raise ValueError(
                f"likelihood: need short >= 1, window >= 10, 0 < probability < 0.5, min_history >= 2, record >= 0; "
                f"got short={short}, window={window}, probability={probability}, min_history={min_history}, "
                f"record={record}"
            )
        self.short = int(short)
        self.window = int(window)
        self.probability = float(probability)
        self.robust = bool(robust)
        self.min_scale = float(min_scale)
        self.min_history = int(min_history)
        self.record = int(record)
        self.history_: list[float] = []

    @property
    def z(self) -> float:
        from scipy.special import ndtri

        return float(ndtri(1.0 - self.probability))

    def _fit(self, values: np.ndarray) -> None:
        self.history_ = values[-(self.window + self.short) :].tolist()

    def _short_means(self, values: np.ndarray) -> np.ndarray:
        """Mean of the last ``short`` finite scores at every row of history + values."""
        full = np.concatenate([np.asarray(self.history_, dtype="float64"), values])
        return pd.Series(full).rolling(self.short, min_periods=1).mean().to_numpy()

    def transform(self, scores: pd.Series) -> pd.Series:
        m = self._short_means(scores.to_numpy(dtype="float64"))[len(self.history_) :]
        out = np.where(np.isfinite(scores.to_numpy(dtype="float64")), m, np.nan)
        return pd.Series(out, index=scores.index)

    def _thresholds(self, values: np.ndarray) -> np.ndarray:
        m = pd.Series(self._short_means(values)).shift(1)  # strictly past rows
        roll = m.rolling(self.window, min_periods=self.min_history)
        if self.robust:
            center = roll.median()
            scale = 1.4826 * (m - center).abs().rolling(self.window, min_periods=self.min_history).median()
        else:
            center = roll.mean()
            scale = roll.std(ddof=0)
        thr = center + self.z * np.maximum(scale, self.min_scale)
        if self.record:  # also above the highest short mean of the last `record` rows: no news in a repeat
            thr = np.maximum(thr, m.rolling(self.record, min_periods=1).max())
        return thr.to_numpy()[len(self.history_) :]

    @property
    def lookback(self) -> int:
        # the robust scale is a rolling median of distances to a rolling median: two windows back
        return max((2 if self.robust else 1) * self.window, self.record) + self.short

    def _state(self) -> dict[str, Any]:
        return {
            "short": self.short,
            "window": self.window,
            "probability": self.probability,
            "robust": self.robust,
            "min_scale": self.min_scale,
            "min_history": self.min_history,
            **({"record": self.record} if self.record else {}),
            "history": self.history_,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> LikelihoodThreshold:
        policy = cls(
            data["short"],
            data["window"],
            data["probability"],
            data["robust"],
            data["min_scale"],
            data["min_history"],
            int(data.get("record", 0)),
        )
        policy.history_ = [float(v) for v in data["history"]]
        return policy
