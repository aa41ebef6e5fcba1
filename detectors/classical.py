"""Classical online detectors from NAB's scoreboard, the yardsticks the neural detectors must beat.

* ``windowed_gaussian`` (NAB's windowed Gaussian, 39.6 on NAB's scoreboard): how many standard
  deviations the row lies from the mean of the previous ``window`` rows (a growing window from
  ``min_periods`` rows on, as NAB's detector grows its window from the start). NAB scores the
  Gaussian tail probability of the same distance; the distance itself ranks rows identically
  and does not saturate at 1.0. Vectorised with cumulative sums.
* ``relative_entropy`` (Wang et al. 2011, "Statistical techniques for online anomaly detection
  in data centers", as in NAB, 54.6): the last ``W`` values are quantised into ``bins`` bins and
  their histogram is tested against every histogram seen so far ("hypotheses") by the relative
  entropy statistic ``2 W KL(P_hat || P_i)`` against the chi-squared 0.99 point with ``bins - 1``
  degrees of freedom. No agreeing hypothesis: the row is anomalous (score 1) and its histogram
  becomes a new hypothesis. Causal difference from NAB: the bins span the **training** rows'
  range, where NAB uses the whole file's minimum and maximum, which a live detector cannot
  know; values below or above that range count in two extra bins of their own (folded into
  the end bins, a jump beyond the training range would look like the top of it).
  The test is sequential (each new hypothesis changes what later windows meet), but is
  vectorised a block of rows at a time; Python steps once per new hypothesis.

Both score each frame whole in ``score_batch`` too: their history grows from the frame's
start, so cutting every frame to a common tail would change the scores. Both read the
scaled features (one column per feature) and take the largest score over features.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from detectors.base import SeriesDetector
from detectors.thresholds import RAW_SERIES_DEFAULT

__all__ = ["RelativeEntropyDetector", "WindowedGaussianDetector"]


class WindowedGaussianDetector(SeriesDetector):
    """Parameters: ``window`` (rows, 1000 as NAB), ``min_periods`` (rows before the first score, 48)."""

    name: ClassVar[str] = "windowed_gaussian"
    requires_training: ClassVar[bool] = False
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "static", "value": 6.0, "suppress": 48}
    default_threshold_columns: ClassVar[dict[str, Any] | None] = RAW_SERIES_DEFAULT
    robust_scaling: ClassVar[bool] = False  # a z-score needs no scaling, and clipping would cap it

    def __init__(self, *, window: int = 1000, min_periods: int = 48, **kwargs: Any) -> None:
        super().__init__(window=int(window), min_periods=int(min_periods), **kwargs)

    @property
    def model_warmup(self) -> int:
        return int(self.params["min_periods"])

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """Every frame scored whole, as ``score`` would (the growing window reaches back to its start;
        a common tail cut to the shortest frame would shorten it for the others)."""
        return {sym: self.score(frame).iloc[-last_n:] for sym, frame in frames.items()}

    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        """Nothing to learn beyond the base's scaling."""

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        w, m = int(self.params["window"]), int(self.params["min_periods"])
        ok = np.isfinite(x)
        v = np.where(ok, x, 0.0)
        zeros = np.zeros((1, x.shape[1]))
        c1 = np.concatenate([zeros, np.cumsum(v, axis=0)])
        c2 = np.concatenate([zeros, np.cumsum(v * v, axis=0)])
        cn = np.concatenate([zeros, np.cumsum(ok, axis=0)])
        t = np.arange(len(x))
        lo = np.maximum(t - w, 0)
        n = cn[t] - cn[lo]  # finite rows among the previous min(t, w)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (c1[t] - c1[lo]) / n
            var = np.maximum((c2[t] - c2[lo]) / n - mean**2, 0.0)
            std = np.sqrt(var)
            z = np.abs(x - mean) / np.where(std > 1e-6, std, 1e-6)
        z = np.where((n >= m) & ok, z, np.nan)
        out = np.full(len(x), np.nan)
        good = np.isfinite(z).any(axis=1)
        out[good] = np.nanmax(z[good], axis=1)
        return out


class RelativeEntropyDetector(SeriesDetector):
    """Parameters: ``bins`` (5), ``W`` (window rows, 52), ``confidence`` (0.99), ``c_th`` (1), as NAB's."""

    name: ClassVar[str] = "relative_entropy"
    requires_training: ClassVar[bool] = True
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "static", "value": 0.5}
    calibration_fraction: ClassVar[float] = 0.0
    robust_scaling: ClassVar[bool] = False  # bins span the training range; clipping would fold the tails

    def __init__(self, *, bins: int = 5, W: int = 52, confidence: float = 0.99, c_th: int = 1, **kwargs: Any) -> None:
        super().__init__(bins=int(bins), W=int(W), confidence=float(confidence), c_th=int(c_th), **kwargs)
        self.low_: np.ndarray | None = None
        self.high_: np.ndarray | None = None

    @property
    def model_warmup(self) -> int:
        return int(self.params["W"]) - 1

    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        rows = np.concatenate(train)
        self.low_ = np.nanmin(rows, axis=0)
        self.high_ = np.nanmax(rows, axis=0)

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        from scipy.stats import chi2

        assert self.low_ is not None and self.high_ is not None
        n_bins, W = int(self.params["bins"]), int(self.params["W"])
        limit = float(chi2.isf(1.0 - self.params["confidence"], n_bins - 1))
        step = (self.high_ - self.low_) / n_bins
        out = np.full(len(x), np.nan)
        if len(x) < W:
            return out
        per_feature = np.zeros((len(x), x.shape[1]))
        finite = np.isfinite(x).all(axis=1)
        for j in range(x.shape[1]):
            if step[j] <= 0:
                continue  # a constant training column: every value is "normal" (NAB does the same)
            v = np.where(np.isfinite(x[:, j]), x[:, j], self.low_[j])
            k = np.ceil((v - self.low_[j]) / step[j])  # NAB's quantisation: 0..bins inside the range
            b = np.clip(k - 1, 0, n_bins - 1) + 1  # NAB's histogram bins, shifted by one
            b = np.where(v < self.low_[j], 0, np.where(v > self.high_[j], n_bins + 1, b)).astype(np.int64)
            onehot = np.zeros((len(x), n_bins + 2))
            onehot[np.arange(len(x)), b] = 1.0
            counts = np.cumsum(np.vstack([np.zeros((1, n_bins + 2)), onehot]), axis=0)
            hist = (counts[W:] - counts[:-W]) / W  # (n - W + 1, bins): the window ending at each row
            per_feature[W - 1 :, j] = self._hypothesis_test(hist, W, limit, int(self.params["c_th"]))
        out[W - 1 :] = per_feature[W - 1 :].max(axis=1)
        out[~finite] = np.nan
        return out

    @staticmethod
    def _hypothesis_test(hist: np.ndarray, W: int, limit: float, c_th: int, chunk: int = 256) -> np.ndarray:
        """Sequential test of each window's histogram against the hypotheses so far (1 = anomalous).

        Row ``i`` is compared with every hypothesis made before it; it joins the agreeing one
        with the smallest statistic (anomalous while that hypothesis has at most ``c_th``
        members), or, with none agreeing, becomes a new hypothesis (anomalous). Only a new
        hypothesis changes what later rows are compared with, so rows are taken a block at a
        time: the statistics of a whole block against all hypotheses in one matrix product, up
        to the first row that agrees with none, which is added before the next block starts.
        Python steps once per new hypothesis, not once per row.
        """
        n = len(hist)
        scores = np.zeros(n)
        if n == 0:
            return scores
        hypotheses = hist[:1].copy()  # the first window is the first hypothesis (score 0, as NAB)
        counts = np.ones(1, dtype=np.int64)
        with np.errstate(divide="ignore", invalid="ignore"):
            plogp = np.where(hist > 0, hist * np.log(hist), 0.0).sum(axis=1)  # (n,)
            i = 1
            while i < n:
                block = hist[i : i + chunk]
                logq = np.log(hypotheses)  # -inf where a hypothesis has an empty bin
                finite = np.isfinite(logq)
                cross = block @ np.where(finite, logq, 0.0).T  # sum_b p_b log q_b over finite q: (rows, H)
                impossible = (block > 0).astype(np.float64) @ (~finite).astype(np.float64).T > 0
                stat = 2 * W * (plogp[i : i + len(block), None] - cross)
                stat[impossible] = np.inf  # p > 0 where q = 0: KL is infinite
                agree = stat < limit
                lost = ~agree.any(axis=1)
                stop = int(np.argmax(lost)) if lost.any() else len(block)
                if stop:
                    best = np.where(agree[:stop], stat[:stop], np.inf).argmin(axis=1)
                    order = np.argsort(best, kind="stable")  # the rank of each row among its hypothesis' joiners
                    ranked = best[order]
                    first = np.r_[0, np.flatnonzero(np.diff(ranked)) + 1]
                    rank = np.empty(stop, dtype=np.int64)
                    rank[order] = np.arange(stop) - np.repeat(first, np.diff(np.r_[first, stop])) + 1
                    scores[i : i + stop] = (counts[best] + rank <= c_th).astype(np.float64)
                    counts += np.bincount(best, minlength=len(counts))
                if stop < len(block):  # a histogram no hypothesis explains: anomalous, and a new hypothesis
                    scores[i + stop] = 1.0
                    hypotheses = np.vstack([hypotheses, block[stop]])
                    counts = np.append(counts, 1)
                i += stop + 1 if stop < len(block) else len(block)
        return scores

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """Every frame scored whole, as ``score`` would: the hypotheses grow with the series, so a tail
        would start them afresh and give other scores (no model call to batch: it is vectorised per frame)."""
        return {sym: self.score(frame).iloc[-last_n:] for sym, frame in frames.items()}

    def _extra_state(self) -> dict[str, Any]:
        return {
            "low": None if self.low_ is None else self.low_.tolist(),
            "high": None if self.high_ is None else self.high_.tolist(),
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        if state.get("low") is not None:
            self.low_ = np.asarray(state["low"], dtype="float64")
            self.high_ = np.asarray(state["high"], dtype="float64")
