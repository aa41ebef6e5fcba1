"""Features as pure functions: candles (or any numeric columns) in, a float matrix out.

Two modes, chosen once at fit time and saved with the model:

* ``candles``: the frame has ``open, high, low, close, volume``. Features are the
  log return, the log volume relative to its own rolling median (so a shared model
  can serve coins whose volumes differ by orders of magnitude), the high-low range
  in log units, and the relative log social volume when that column was present
  while training.
* ``columns``: anything else (a lone ``value`` column, sensor data). The chosen
  numeric columns are used directly.

Candle mode can take optional extra inputs (``extras``: on-chain metrics such as
``onchain_active_addresses``, order-book features such as ``book_imbalance_1pct``). Each
becomes one feature, its value against the median and MAD of its own previous
``extra_window`` rows. They are optional in the strict sense: a missing column or a
missing value (a source that was down, a daily value not yet known) reads as "nothing
unusual" (0), never as an error, so a dead data source never stops detection.

Either way the result is scaled by a :class:`RobustScaler` fitted on the training
part only (median and MAD), so nothing from the future leaks into the features.
All functions here are causal: the row at ``t`` depends only on rows up to ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DetectorError

__all__ = [
    "CANDLE_FEATURES",
    "FeatureSpec",
    "RobustScaler",
    "build_features",
    "check_frame",
    "daily_harmonics",
    "extra_input_features",
    "features_from_values",
    "fit_daily_profile",
    "frame_times",
    "infer_spec",
    "raw_values",
    "sliding_windows",
]

OHLCV = ("open", "high", "low", "close", "volume")
CANDLE_FEATURES = ("log_return", "log_volume", "hl_range")
SOCIAL = "social_volume"


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a detector reads; saved in the model metadata.

    ``norm_window`` is the rolling-median length (rows) used to make volume
    relative; it sets the feature warm-up in candle mode.
    """

    mode: str  # "candles" | "columns"
    columns: tuple[str, ...]  # input columns read from the frame
    social: bool = False
    norm_window: int = 48
    step_s: float = 0.0  # median bar length seen in training (0: unknown, no gap correction)
    #: daily profile fitted on training rows: one row of harmonic coefficients per profiled
    #: quantity (log volatility, relative log volume[, relative log social volume]); () = none
    daily: tuple[tuple[float, ...], ...] = ()
    #: optional extra inputs (candle mode), read after OHLCV (and social volume); NaN allowed
    extras: tuple[str, ...] = ()
    #: rows of history each extra input is judged against
    extra_window: int = 720
    #: raw series (columns mode): rows in one day; each column gets a second feature, its change
    #: from the same time the day before (0: none)
    season: int = 0

    @property
    def names(self) -> tuple[str, ...]:
        if self.mode == "columns":
            return self.columns + tuple(f"{c}_vs_day_before" for c in self.columns if self.season)
        return CANDLE_FEATURES + (("social_volume",) if self.social else ()) + self.extras

    @property
    def required(self) -> tuple[str, ...]:
        """Input columns that must be present and finite (social volume and extras are optional)."""
        return tuple(c for c in self.columns if c != SOCIAL and c not in self.extras)

    @property
    def warmup(self) -> int:
        """Rows consumed before the first complete feature row."""
        if self.mode != "candles":
            return self.season
        return max(self.norm_window, self.extra_window if self.extras else 0) + 1

    def to_dict(self) -> dict[str, Any]:
        out = {
            "mode": self.mode,
            "columns": list(self.columns),
            "social": self.social,
            "norm_window": self.norm_window,
            "step_s": self.step_s,
            "daily": [list(row) for row in self.daily],
        }
        if self.extras:
            out.update({"extras": list(self.extras), "extra_window": self.extra_window})
        if self.season:
            out["season"] = self.season
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(
            data["mode"],
            tuple(data["columns"]),
            bool(data["social"]),
            int(data["norm_window"]),
            float(data["step_s"]),
            tuple(tuple(float(c) for c in row) for row in data.get("daily", ())),
            tuple(data.get("extras", ())),
            int(data.get("extra_window", 720)),
            int(data.get("season", 0)),
        )


def infer_spec(
    frame: pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    norm_window: int = 48,
    extras: Sequence[str] = (),
    extra_window: int = 720,
) -> FeatureSpec:
    """Pick candle features when OHLCV is there (and no columns were asked for), else the numeric columns.

    ``extras`` (candle mode only) are optional extra inputs; they need not be in ``frame``.
    """
    if columns:
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise DetectorError(
                f"column(s) {', '.join(missing)} not in the input (has: {', '.join(map(str, frame.columns))})"
            )
        return FeatureSpec("columns", tuple(columns))
    if all(c in frame.columns for c in OHLCV):
        social = SOCIAL in frame.columns and bool(frame[SOCIAL].notna().any())
        diffs = np.diff(frame.index.as_unit("ns").asi8) / 1e9 if isinstance(frame.index, pd.DatetimeIndex) else []
        step = float(np.median(diffs)) if len(diffs) else 0.0
        extra = tuple(dict.fromkeys(e for e in extras if e not in OHLCV and e != SOCIAL))
        cols = OHLCV + ((SOCIAL,) if social else ()) + extra
        return FeatureSpec("candles", cols, social, norm_window, step, (), extra, int(extra_window))
    if extras:
        raise DetectorError(
            f"optional inputs ({', '.join(extras)}) need candle input (open, high, low, close, volume); "
            f"the frame has {', '.join(map(str, frame.columns))}"
        )
    numeric = [c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c])]
    if not numeric:
        raise DetectorError(f"no numeric columns in the input (has: {', '.join(map(str, frame.columns)) or 'none'})")
    return FeatureSpec("columns", tuple(numeric))


def check_frame(frame: pd.DataFrame, spec: FeatureSpec, *, min_rows: int, what: str = "input") -> None:
    """Raise DetectorError naming the problem: missing column, NaN/inf value, too few rows, unsorted index."""
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DetectorError(f"{what}: index must be a DatetimeIndex, got {type(frame.index).__name__}")
    required = list(spec.required)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DetectorError(
            f"{what}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns)) or 'none'})"
        )
    if len(frame) < min_rows:
        raise DetectorError(f"{what}: needs at least {min_rows} rows, got {len(frame)}")
    if not frame.index.is_monotonic_increasing:
        raise DetectorError(f"{what}: index must be sorted by time")
    values = frame[required].to_numpy(dtype="float64")
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DetectorError(
            f"{what}: column {required[col]!r} has a missing or non-finite value at {frame.index[row]} "
            f"(got {values[row, col]!r}); fill or drop such rows first"
        )
    if spec.mode == "candles":
        prices = frame[["open", "high", "low", "close"]].to_numpy(dtype="float64")
        if (prices <= 0).any():
            row = int(np.argwhere(prices <= 0)[0][0])
            raise DetectorError(f"{what}: non-positive price at {frame.index[row]}")


def _rolling_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of the last ``window`` rows along axis -1 (NaN until full); x shape (..., n)."""
    out = np.full(x.shape, np.nan)
    if x.shape[-1] >= window:
        out[..., window - 1 :] = np.median(np.lib.stride_tricks.sliding_window_view(x, window, axis=-1), axis=-1)
    return out


def _relative_log(x: np.ndarray, window: int) -> np.ndarray:
    """log1p(x) minus its rolling median over the last ``window`` rows (NaN until full)."""
    lx = np.log1p(np.clip(x, 0, None))
    return lx - _rolling_median(lx, window)


@lru_cache(maxsize=256)
def _positions(have: tuple[str, ...], want: tuple[str, ...]) -> np.ndarray:
    """Column positions of ``want`` in ``have`` (-1 where absent); cached per header."""
    return np.array([have.index(c) if c in have else -1 for c in want], dtype=np.intp)


def frame_times(frame: pd.DataFrame, tail: int | None = None) -> np.ndarray:
    """Epoch seconds of the frame's index (optionally the last ``tail`` rows)."""
    ns = frame.index.asi8 if tail is None else frame.index[-tail:].asi8
    unit = getattr(frame.index.dtype, "unit", None) or np.datetime_data(frame.index.dtype)[0]
    return ns / {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[unit]


def raw_values(frame: pd.DataFrame, spec: FeatureSpec, tail: int | None = None) -> np.ndarray:
    """The input columns as float64 (n, n_columns), optionally only the last ``tail`` rows.

    A missing (or unknown) social value reads as 0 mentions; a missing extra input stays NaN
    (its feature reads it as "nothing unusual"). Uses one ``to_numpy`` of the
    frame (a view for an all-float frame) rather than per-column pandas indexing: this runs
    once per symbol in ``score_batch``.
    """
    arr = frame.to_numpy(dtype="float64", copy=False)
    if tail is not None:
        arr = arr[-tail:]
    pos = _positions(tuple(frame.columns), spec.columns)
    if (pos >= 0).all():
        out = arr[:, pos]
    else:
        out = np.zeros((len(arr), len(pos)))
        present = pos >= 0
        out[:, present] = arr[:, pos[present]]
        if spec.extras:  # an extra input the frame lacks is unknown, not zero
            n_extra = len(spec.extras)
            out[:, -n_extra:][:, ~present[-n_extra:]] = np.nan
    if spec.social:
        out[:, 5] = np.nan_to_num(out[:, 5], nan=0.0)
    return out


def _bars_spanned(close: np.ndarray, times: np.ndarray | None, step_s: float) -> np.ndarray:
    """Bars covered by the return into each row: time since the close last changed, in bars (>= 1)."""
    n = close.shape[-1]
    idx = np.broadcast_to(np.arange(n), close.shape)
    changed = np.ones(close.shape, dtype=bool)
    changed[..., 1:] = close[..., 1:] != close[..., :-1]
    run_start = np.maximum.accumulate(np.where(changed, idx, 0), axis=-1)  # first row of each flat run
    prev_start = np.zeros(close.shape, dtype=np.intp)
    prev_start[..., 1:] = run_start[..., :-1]
    if times is not None and step_s > 0:
        bars = times / step_s
    else:
        bars = idx.astype("float64")
    span = bars - np.take_along_axis(bars, prev_start, axis=-1)
    return np.maximum(span, 1.0)


DAILY_HARMONICS = 2  # cos/sin pairs of the time of day in the daily profile
_MIN_PROFILE_DAYS = 2.0  # training must span this many days to fit a daily profile
_VOL_HALFLIFE_FRACTION = 0.25  # half-life of the volatility weights, as a fraction of norm_window


def daily_harmonics(times: np.ndarray, n: int = DAILY_HARMONICS) -> np.ndarray:
    """Time-of-day harmonics ``cos/sin(2 pi k h / 24)``, k = 1..n: epoch seconds (..., n) -> (..., n, 2n)."""
    phase = 2 * np.pi * (np.asarray(times, dtype="float64") % 86_400.0) / 86_400.0
    cols = []
    for k in range(1, n + 1):
        cols += [np.cos(k * phase), np.sin(k * phase)]
    return np.stack(cols, axis=-1)


def _profile(times: np.ndarray | None, spec: FeatureSpec, row: int, shape: tuple[int, ...]) -> np.ndarray:
    """The fitted daily profile ``row`` at every bar (zeros without a profile or times)."""
    if not spec.daily or times is None:
        return np.zeros(shape)
    return daily_harmonics(times) @ np.asarray(spec.daily[row], dtype="float64")


def _exp_mean_prev(x: np.ndarray, window: int, halflife: float) -> np.ndarray:
    """Exponentially weighted mean of the ``window`` rows before each row along axis -1 (NaN until available).

    A finite window (not a recursive EWMA) so the value at ``t`` depends on rows
    ``t - window .. t - 1`` only: scoring a tail gives the same numbers as scoring the whole series.
    """
    out = np.full(x.shape, np.nan)
    if x.shape[-1] <= window:
        return out
    weights = 0.5 ** (np.arange(window)[::-1] / halflife)
    weights /= weights.sum()
    views = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)  # (..., n - window + 1, window)
    out[..., window:] = (views @ weights)[..., :-1]
    return out


def _base_features(v: np.ndarray, spec: FeatureSpec, times: np.ndarray | None) -> dict[str, np.ndarray]:
    """Log return (gap-scaled), log high-low range, relative log volume/social, each (..., n)."""
    open_, high, low, close, volume = v[:5]
    w = spec.norm_window
    log_ret = np.full(close.shape, np.nan)
    log_ret[..., 1:] = np.diff(np.log(close), axis=-1)
    # Gaps and stale bars: a return that spans k bars (missing rows, or a close repeated
    # by a frozen feed) is divided by sqrt(k), so the catch-up move is not an anomaly.
    span = _bars_spanned(close, times, spec.step_s)
    out = {
        "log_ret": log_ret / np.sqrt(span),
        "hl": np.log(high / low),
        "rel_volume": _relative_log(volume, w),
    }
    if spec.social:
        out["rel_social"] = _relative_log(v[5], w)
    return out


def fit_daily_profile(values: Sequence[np.ndarray], times: Sequence[np.ndarray], spec: FeatureSpec) -> FeatureSpec:
    """``spec`` with a daily profile fitted on training series (candle mode, intraday bars only).

    Markets breathe with the clock: volatility and volume peak at the same hours every day.
    A rolling normaliser over two days averages that cycle away, so quiet-hour moves look
    small and busy-hour noise looks big. This least-squares fit of time-of-day harmonics to
    the log range (volatility) and the relative log volume (and social volume) of the training
    rows gives the cycle, which the features then remove. The constant is not kept (the
    scaler handles levels). Without at least two days of intraday training rows the spec is
    returned unchanged.

    Parameters
    ----------
    values : raw values (n_i, n_columns) of each training series, in ``spec.columns`` order.
    times : epoch seconds (n_i,) of each series.
    """
    if spec.mode != "candles" or not values:
        return spec
    if not 0 < spec.step_s <= 86_400.0 / 4:
        return spec
    span_days = sum(float(t[-1] - t[0]) for t in times if len(t)) / 86_400.0 / len(times)
    if span_days < _MIN_PROFILE_DAYS:
        return spec
    plain = FeatureSpec(
        spec.mode, spec.columns, spec.social, spec.norm_window, spec.step_s, (), spec.extras, spec.extra_window
    )
    targets: list[list[np.ndarray]] = []
    designs: list[np.ndarray] = []
    for vals, t in zip(values, times, strict=True):
        base = _base_features(np.moveaxis(np.asarray(vals, dtype="float64"), -1, 0), plain, t)
        ys = [np.log(base["hl"] + 1e-4), base["rel_volume"]] + ([base["rel_social"]] if spec.social else [])
        targets.append(ys)
        designs.append(daily_harmonics(t))
    x = np.concatenate(designs)
    x = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    rows = []
    for j in range(len(targets[0])):
        y = np.concatenate([ys[j] for ys in targets])
        ok = np.isfinite(y)
        coef = np.linalg.lstsq(x[ok], y[ok], rcond=None)[0] if ok.sum() > x.shape[1] * 10 else np.zeros(x.shape[1])
        rows.append(tuple(float(c) for c in coef[1:]))
    return FeatureSpec(
        spec.mode, spec.columns, spec.social, spec.norm_window, spec.step_s, tuple(rows), spec.extras, spec.extra_window
    )


EXTRA_DEADBAND = 3.0  # robust z-scores of an extra input within this read as "nothing unusual"


def _extra_features(x: np.ndarray, window: int) -> np.ndarray:
    """Each extra input against the median and MAD of its previous ``window`` rows; 0 where unknown.

    ``x`` is (..., n). Causal (the row itself is not in its reference window) and NaN-aware:
    a window needs a quarter of its rows known, else the feature is 0. Robust z-scores
    within +-``EXTRA_DEADBAND`` read as 0 and larger ones are shrunk by it: slow inputs
    (a daily value held for 24 hourly bars) then stay exactly flat in ordinary times, so a
    detector's own rolling normalisation cannot blow up the small day-to-day steps.
    """
    import warnings

    out = np.zeros(x.shape)
    n = x.shape[-1]
    if n <= window:
        return out
    hist = np.lib.stride_tricks.sliding_window_view(x, window, axis=-1)[..., :-1, :]  # (..., n - window, window)
    cur = x[..., window:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(hist, axis=-1)
        mad = 1.4826 * np.nanmedian(np.abs(hist - med[..., None]), axis=-1)
    enough = np.isfinite(hist).sum(axis=-1) >= max(2, window // 4)
    scale = np.maximum(np.nan_to_num(mad), 1e-6 * np.abs(np.nan_to_num(med)) + 1e-12)
    z = (cur - med) / scale
    shrunk = np.sign(z) * np.maximum(np.abs(z) - EXTRA_DEADBAND, 0.0)
    out[..., window:] = np.where(enough & np.isfinite(z), np.clip(shrunk, -50, 50), 0.0)
    return out


def extra_input_features(values: np.ndarray, window: int) -> np.ndarray:
    """Optional-input features of other detector families: (..., n, k) raw values -> (..., n, k) features."""
    moved = np.moveaxis(np.asarray(values, dtype="float64"), -1, 0)  # (k, ..., n)
    return np.stack([_extra_features(x, window) for x in moved], axis=-1)


def features_from_values(values: np.ndarray, spec: FeatureSpec, times: np.ndarray | None = None) -> np.ndarray:
    """Unscaled features from raw values in ``spec.columns`` order.

    Works on one series (n, n_columns) or a stack of equally long series
    (n_series, n, n_columns), so a batch of symbols is computed in one vectorised pass.
    ``times`` (..., n) are epoch seconds, used to see gaps (missing rows) and the time of
    day (the fitted daily profile, if any). Returns (..., n, n_features); rows inside the
    warm-up are NaN. Causal: row ``t`` uses rows ``<= t``; the volatility that standardises
    the return at ``t`` uses rows ``< t``.
    """
    if spec.mode == "columns":
        x = values.astype("float64", copy=False)
        if not spec.season:
            return x
        before = np.full(x.shape, np.nan)
        before[..., spec.season :, :] = x[..., : -spec.season, :]
        return np.concatenate([x, x - before], axis=-1)
    v = np.moveaxis(values, -1, 0)  # (n_columns, ..., n)
    w = spec.norm_window
    base = _base_features(v, spec, times)
    shape = base["log_ret"].shape
    vol_cycle = np.exp(_profile(times, spec, 0, shape))  # time-of-day volatility factor
    # Volatility clustering: standardise the (de-cycled) return by an exponentially weighted
    # mean of the previous w rows' Parkinson variance, range^2 / (4 ln 2): the high-low range
    # measures a bar's volatility far more precisely than its close-to-close return.
    hl = base["hl"] / vol_cycle
    var = _exp_mean_prev(hl**2 / (4 * np.log(2)), w, max(1.0, _VOL_HALFLIFE_FRACTION * w))
    std_ret = base["log_ret"] / vol_cycle / np.maximum(np.sqrt(var), 1e-12)
    log_hl = np.log(base["hl"] + 1e-4)  # 1 bp floor: bars with high == low (no trade) are not -inf
    rel_hl = log_hl - _rolling_median(log_hl, w) - _profile(times, spec, 0, shape)
    cols = [std_ret, base["rel_volume"] - _profile(times, spec, 1, shape), rel_hl]
    if spec.social:
        cols.append(base["rel_social"] - _profile(times, spec, 2, shape))
    first_extra = 5 + int(spec.social)
    for j in range(len(spec.extras)):
        cols.append(_extra_features(v[first_extra + j], spec.extra_window))
    out = np.stack(cols, axis=-1)
    out[..., : spec.warmup, :] = np.nan
    return out


def build_features(frame: pd.DataFrame, spec: FeatureSpec) -> np.ndarray:
    """Unscaled features of one frame, shape (n_rows, n_features); rows inside the warm-up are NaN.

    Causal: row ``t`` uses rows ``<= t`` only. Missing social values count as 0 mentions.
    """
    return features_from_values(raw_values(frame, spec), spec, frame_times(frame))


@dataclass
class RobustScaler:
    """(x - median) / (1.4826 * MAD), fitted on training rows; clipped to +-clip.

    MAD rather than std so the anomalies inside the training part do not
    inflate the scale. A floor keeps constant columns from dividing by zero.
    """

    center: np.ndarray
    scale: np.ndarray
    clip: float = 50.0

    @classmethod
    def fit(cls, x: np.ndarray) -> RobustScaler:
        rows = x[np.isfinite(x).all(axis=1)]
        if len(rows) == 0:
            raise DetectorError("no complete feature rows to fit the scaling on")
        center = np.median(rows, axis=0)
        mad = 1.4826 * np.median(np.abs(rows - center), axis=0)
        std = rows.std(axis=0)
        scale = np.where(mad > 1e-12, mad, np.where(std > 1e-12, std, 1.0))
        return cls(center, scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.center) / self.scale, -self.clip, self.clip)

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RobustScaler:
        return cls(
            np.asarray(data["center"], dtype="float64"), np.asarray(data["scale"], dtype="float64"), data["clip"]
        )


def sliding_windows(x: np.ndarray, length: int) -> np.ndarray:
    """All windows of ``length`` consecutive rows, shape (n_rows - length + 1, length, n_features); a view."""
    if len(x) < length:
        return np.empty((0, length, x.shape[1]), dtype=x.dtype)
    return np.lib.stride_tricks.sliding_window_view(x, (length, x.shape[1]))[:, 0]
