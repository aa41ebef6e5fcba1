"""Thresholds: the swappable policy that turns scores into alarms (score != alarm).

Every policy has ``fit(train_scores)`` and ``thresholds(scores)``, a threshold per
point that is causal (the threshold at ``t`` uses scores up to ``t`` plus what was
fitted on training data), and ``transform(scores)`` for the series that is compared
with it (identity, except the telemanom policy which compares EWMA-smoothed errors).
State round-trips through ``to_dict``/``threshold_from_dict`` as plain JSON.

Policies:

* ``static``: one fixed value.
* ``k_sigma``: median + k * 1.4826 * MAD of the training scores (robust k-sigma).
* ``rolling_quantile``: the q-quantile of the previous ``window`` scores; the training
  quantile until enough history exists.
* ``dynamic``: Hundman et al. 2018 (telemanom) nonparametric threshold on EWMA-smoothed
  errors over the last ``window`` points, with pruning of weak anomalous sequences.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from core.config import THRESHOLD_POLICY_KEYS, ThresholdConfig, validate_threshold
from core.errors import ConfigError, DetectorError
from detectors.alarms import fires, suppress_repeats

__all__ = [
    "RAW_SERIES_DEFAULT",
    "DynamicThreshold",
    "KSigmaThreshold",
    "RollingQuantileThreshold",
    "StaticThreshold",
    "ThresholdPolicy",
    "make_threshold",
    "threshold_from_dict",
]


#: The default threshold of the unsupervised detectors on raw series (``columns`` mode), chosen on the
#: NAB tuning half: Numenta's likelihood, one alert per incident (48 rows), and no alarm for a short mean
#: the series already reached in the last 576 rows (two days of 5-minute rows: a daily pattern is no news).
RAW_SERIES_DEFAULT: dict[str, Any] = {"policy": "likelihood", "suppress": 48, "record": 576}


class ThresholdPolicy:
    """Base policy: subclasses set ``policy`` and implement ``_thresholds``."""

    policy = "base"

    def __init__(self) -> None:
        self.fitted_ = False
        #: rows after an alarm run's start during which a new run is dropped (0: off); see likelihood.py
        self.suppress = 0
        #: how many times rarer per row a fixed level's exceedances must be than its tuned value
        #: gives (bars shorter than the ones it was tuned on); see :meth:`fit_tail`
        self.rarer = 1.0
        self.excess_ = 0.0

    def fit(self, scores: pd.Series | np.ndarray) -> ThresholdPolicy:
        values = np.asarray(scores, dtype="float64")
        values = values[np.isfinite(values)]
        if len(values) == 0:
            raise DetectorError(f"threshold {self.policy!r}: no finite training scores to fit on")
        self._fit(values)
        self.fitted_ = True
        return self

    def _fit(self, values: np.ndarray) -> None:  # noqa: B027 (optional hook)
        """Learn from finite training scores (nothing for static)."""

    def fit_tail(self, scores: pd.Series | np.ndarray) -> ThresholdPolicy:
        """Fit the tail the ``rarer`` shift extrapolates along: the mean excess over the 90th percentile.

        Under an exponential tail above that percentile, ``P(score > t + excess * ln(r))`` is
        ``P(score > t) / r``: a fixed level tuned on hourly bars, raised by ``excess * ln(12)``
        on 5-minute bars, keeps its alarms per hour instead of multiplying them by 12. The mean
        excess over the 90th percentile is larger than over higher percentiles when the tail thins
        out, so the raise errs on the side of fewer alarms. Only ``static`` and ``k_sigma`` use it.

        The scale is estimated from the median excess (``median / ln 2`` is the exponential's scale),
        not the mean: the scores a detector is fitted on at start include the latest bars, and one
        blatant spike among them (a +25 % minute) pulled the mean up far enough to hide itself.
        """
        values = np.asarray(scores, dtype="float64")
        values = values[np.isfinite(values)]
        if len(values) >= 20:
            u = float(np.quantile(values, 0.9))
            above = values[values > u]
            self.excess_ = float(np.median(above - u) / np.log(2.0)) if len(above) else 0.0
        return self

    @property
    def shift(self) -> float:
        """What a fixed level is raised by: ``excess * ln(rarer)`` (0 unless ``rarer`` > 1)."""
        return self.excess_ * float(np.log(self.rarer)) if self.rarer > 1 else 0.0

    def transform(self, scores: pd.Series) -> pd.Series:
        return scores

    def thresholds(self, scores: pd.Series) -> pd.Series:
        if not self.fitted_:
            raise DetectorError(f"threshold {self.policy!r} is not fitted: fit it on training scores first")
        return pd.Series(self._thresholds(scores.to_numpy(dtype="float64")), index=scores.index, name="threshold")

    def _thresholds(self, values: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def lookback(self) -> int:
        """Past scores the value and threshold at a row read (0: none beyond the fitted state).

        Carrying this many recent scores from one live cycle to the next gives new rows the
        thresholds they get in the whole series (``detectors.alarm_stream``).
        """
        return 0

    def thresholds_last(self, scores: pd.Series, n: int) -> pd.Series:
        """The thresholds of the last ``n`` rows of ``scores`` (what a live cycle needs); same values as
        ``thresholds(scores).iloc[-n:]``, cheaper where a policy's work is per row."""
        return self.thresholds(scores).iloc[len(scores) - n :]

    def is_anomaly(self, scores: pd.Series) -> pd.Series:
        """True where the (transformed) score exceeds its threshold (:func:`detectors.alarms.fires`),
        less the repeats inside one incident when ``suppress`` is set (:func:`detectors.alarms.suppress_repeats`)."""
        hit = fires(self.transform(scores), self.thresholds(scores)).rename("is_anomaly")
        return suppress_repeats(hit, self.suppress)

    def to_dict(self) -> dict[str, Any]:
        tail = {"rarer": self.rarer, "excess": self.excess_} if self.rarer > 1 else {}
        return {"policy": self.policy, "fitted": self.fitted_, "suppress": self.suppress, **tail, **self._state()}

    def _state(self) -> dict[str, Any]:
        return {}


class StaticThreshold(ThresholdPolicy):
    policy = "static"

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = float(value)
        self.fitted_ = True

    @property
    def level(self) -> float:
        """The threshold of every row: the value, raised by :attr:`shift` on short bars."""
        return self.value + self.shift

    def _thresholds(self, values: np.ndarray) -> np.ndarray:
        return np.full(len(values), self.level)

    def _state(self) -> dict[str, Any]:
        return {"value": self.value}


class KSigmaThreshold(ThresholdPolicy):
    policy = "k_sigma"

    def __init__(self, k: float = 4.0) -> None:
        super().__init__()
        self.k = float(k)
        self.center_ = 0.0
        self.scale_ = 1.0

    def _fit(self, values: np.ndarray) -> None:
        self.center_ = float(np.median(values))
        mad = 1.4826 * float(np.median(np.abs(values - self.center_)))
        self.scale_ = mad if mad > 1e-12 else max(float(values.std()), 1e-12)

    @property
    def level(self) -> float:
        """The threshold of every row: median + k * scale of the training scores, raised by :attr:`shift`."""
        return self.center_ + self.k * self.scale_ + self.shift

    @property
    def value(self) -> float:
        return self.level

    def _thresholds(self, values: np.ndarray) -> np.ndarray:
        return np.full(len(values), self.value)

    def _state(self) -> dict[str, Any]:
        return {"k": self.k, "center": self.center_, "scale": self.scale_}


class RollingQuantileThreshold(ThresholdPolicy):
    policy = "rolling_quantile"

    def __init__(self, quantile: float = 0.995, window: int = 500) -> None:
        super().__init__()
        self.quantile = float(quantile)
        self.window = int(window)
        self.train_value_ = float("nan")

    def _fit(self, values: np.ndarray) -> None:
        self.train_value_ = float(np.quantile(values, self.quantile))

    def _thresholds(self, values: np.ndarray) -> np.ndarray:
        # Previous `window` scores only (shift 1): a spike cannot raise its own bar.
        min_periods = max(10, self.window // 5)
        rolled = pd.Series(values).shift(1).rolling(self.window, min_periods=min_periods).quantile(self.quantile)
        return rolled.fillna(self.train_value_).to_numpy()

    @property
    def lookback(self) -> int:
        return self.window

    def _state(self) -> dict[str, Any]:
        return {"quantile": self.quantile, "window": self.window, "train_value": self.train_value_}


class DynamicThreshold(ThresholdPolicy):
    """Telemanom's nonparametric dynamic threshold (Hundman et al., KDD 2018).

    At each point the EWMA-smoothed errors of the last ``window`` points (a history
    that starts with the tail of the training errors) are searched for the epsilon
    ``mean + z * std`` (z in ``z_range``) that best splits them: the objective is the
    relative drop of mean and std when points above epsilon are removed, divided by
    (#anomalous points + #anomalous sequences^2). Pruning then drops the current
    sequence unless its peak exceeds the next-highest peak (or the highest normal
    error) by more than ``p``; a pruned point gets a threshold just above its value.
    The epsilon search is vectorised over all windows at once; pruning runs only on
    the few points that exceed epsilon.
    """

    policy = "dynamic"

    def __init__(self, window: int = 500, span: int = 3, p: float = 0.13, z_max: float = 10.0) -> None:
        super().__init__()
        self.window = int(window)
        self.span = int(span)
        self.p = float(p)
        self.z_max = float(z_max)
        self.history_: list[float] = []

    def _smooth(self, values: np.ndarray) -> np.ndarray:
        return pd.Series(values).ewm(span=self.span, adjust=False, ignore_na=True).mean().to_numpy()

    def _fit(self, values: np.ndarray) -> None:
        self.history_ = self._smooth(values)[-self.window :].tolist()

    def transform(self, scores: pd.Series) -> pd.Series:
        return pd.Series(self._smooth(scores.to_numpy(dtype="float64")), index=scores.index)

    @property
    def lookback(self) -> int:
        # the window, plus the rows after which the EWMA's weight (1 - 2 / (span + 1))^k is below
        # double precision: a carried history of this length smooths like the whole series
        return self.window + 64 * self.span

    def thresholds_last(self, scores: pd.Series, n: int) -> pd.Series:
        if not self.fitted_:
            raise DetectorError(f"threshold {self.policy!r} is not fitted: fit it on training scores first")
        out = self._thresholds(scores.to_numpy(dtype="float64"), first=len(scores) - n)
        return pd.Series(out[len(scores) - n :], index=scores.index[len(scores) - n :], name="threshold")

    def _thresholds(self, values: np.ndarray, first: int = 0) -> np.ndarray:
        hist = np.asarray(self.history_, dtype="float64")
        smoothed = self._smooth(values)
        full = np.concatenate([hist, smoothed])
        full = np.where(np.isfinite(full), full, np.nan)
        out = np.full(len(values), np.nan)
        start = len(hist)
        w = min(self.window, len(full))
        if w < 10:
            return out
        # Pad at the front so every point has a window; NaN entries are ignored.
        padded = np.concatenate([np.full(w - 1, np.nan), full])
        zs = np.arange(2.0, self.z_max + 0.01, 0.5)
        chunk = 2048
        for lo in range(start + max(first, 0), len(full), chunk):
            hi = min(lo + chunk, len(full))
            win = np.lib.stride_tricks.sliding_window_view(padded, w)[lo:hi]  # (m, w) ending at each point
            eps = self._epsilon(win, zs)
            out[lo - start : hi - start] = eps
        cur = smoothed
        cand = np.flatnonzero(np.isfinite(cur) & (cur > out))  # NaN (rows before `first`) compares False
        for i in cand:
            win = padded[start + i : start + i + w]
            if self._pruned(win, out[i]):
                out[i] = cur[i] * (1 + 1e-9) + 1e-12
        return out

    def _epsilon(self, win: np.ndarray, zs: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = np.nanmean(win, axis=1)
            sd = np.nanstd(win, axis=1)
            best = np.full(len(win), -np.inf)
            eps_best = mu + self.z_max * sd
            valid = np.isfinite(win)
            n_valid = valid.sum(axis=1)
            for z in zs:
                eps = mu + z * sd
                above = valid & (win > eps[:, None])
                n_a = above.sum(axis=1)
                below = np.where(valid & ~above, win, np.nan)
                mu_b = np.nanmean(below, axis=1)
                sd_b = np.nanstd(below, axis=1)
                n_seq = (above[:, 1:] & ~above[:, :-1]).sum(axis=1) + above[:, 0]
                score = ((mu - mu_b) / mu + (sd - sd_b) / sd) / (n_a + n_seq**2)
                ok = (n_a > 0) & (n_a < 0.5 * n_valid) & (n_seq <= 5) & np.isfinite(score) & (score >= best)
                best = np.where(ok, score, best)
                eps_best = np.where(ok, eps, eps_best)
        return eps_best

    def _pruned(self, win: np.ndarray, eps: float) -> bool:
        """True if the sequence that contains the last point does not survive pruning."""
        finite = np.where(np.isfinite(win), win, -np.inf)
        above = finite > eps
        # label contiguous sequences of `above`
        starts = above & ~np.concatenate([[False], above[:-1]])
        seq_id = np.cumsum(starts) * above
        n_seq = int(seq_id.max())
        peaks = np.array([finite[seq_id == k].max() for k in range(1, n_seq + 1)])
        normal = finite[~above]
        normal_max = float(normal.max()) if len(normal) and np.isfinite(normal.max()) else 0.0
        order = np.sort(peaks)[::-1]
        chain = np.concatenate([order, [normal_max]])
        with np.errstate(invalid="ignore", divide="ignore"):
            drops = (chain[:-1] - chain[1:]) / np.abs(chain[:-1])
        keep_idx = np.flatnonzero(drops > self.p)
        if len(keep_idx) == 0:
            return True
        cutoff = order[keep_idx.max()]  # sequences with peaks >= cutoff are kept
        return bool(peaks[-1] < cutoff)

    def _state(self) -> dict[str, Any]:
        return {
            "window": self.window,
            "span": self.span,
            "p": self.p,
            "z_max": self.z_max,
            "history": self.history_,
        }


def make_threshold(cfg: ThresholdConfig | dict[str, Any]) -> ThresholdPolicy:
    """A fresh (unfitted unless static) policy from a ``ThresholdConfig`` or its dict.

    A dict is validated by the config model (``core.config.validate_threshold``): only the
    chosen policy's keys, within their ranges, plus ``suppress`` (rows, any policy).
    """
    if isinstance(cfg, dict):
        cfg = validate_threshold(cfg)
    policy: ThresholdPolicy
    if cfg.policy == "static":
        assert cfg.value is not None
        policy = StaticThreshold(cfg.value)
    elif cfg.policy == "k_sigma":
        assert cfg.k is not None
        policy = KSigmaThreshold(cfg.k)
    elif cfg.policy == "rolling_quantile":
        assert cfg.quantile is not None and cfg.window is not None
        policy = RollingQuantileThreshold(cfg.quantile, cfg.window)
    elif cfg.policy == "dynamic":
        assert cfg.window is not None
        policy = DynamicThreshold(cfg.window)
    elif cfg.policy == "likelihood":
        from detectors.likelihood import LikelihoodThreshold

        policy = LikelihoodThreshold(
            **{key: getattr(cfg, key) for key in THRESHOLD_POLICY_KEYS["likelihood"] if getattr(cfg, key) is not None}
        )
    else:  # pragma: no cover - the config model's Literal lists the policies
        raise ConfigError(f"threshold.policy: unknown policy {cfg.policy!r}")
    policy.suppress = int(cfg.suppress)
    return policy


def threshold_from_dict(data: dict[str, Any]) -> ThresholdPolicy:
    """Rebuild a fitted policy saved by ``to_dict``."""
    kind = data.get("policy")
    policy: ThresholdPolicy
    if kind == "likelihood":
        from detectors.likelihood import LikelihoodThreshold

        policy = LikelihoodThreshold.from_state(data)
    elif kind == "static":
        policy = StaticThreshold(data["value"])
    elif kind == "k_sigma":
        policy = KSigmaThreshold(data["k"])
        policy.center_, policy.scale_ = float(data["center"]), float(data["scale"])
    elif kind == "rolling_quantile":
        policy = RollingQuantileThreshold(data["quantile"], data["window"])
        policy.train_value_ = float(data["train_value"])
    elif kind == "dynamic":
        policy = DynamicThreshold(data["window"], data["span"], data["p"], data["z_max"])
        policy.history_ = [float(v) for v in data["history"]]
    else:
        raise DetectorError(f"saved threshold has unknown policy {kind!r}")
    policy.fitted_ = bool(data.get("fitted", True))
    policy.suppress = int(data.get("suppress", 0))
    policy.rarer = float(data.get("rarer", 1.0))
    policy.excess_ = float(data.get("excess", 0.0))
    return policy
