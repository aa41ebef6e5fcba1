"""The detector contract every detector honours (PyOD's fit/score, Merlion's score != alarm).

A detector turns a frame (UTC ``DatetimeIndex``) into one anomaly score per row,
higher = more anomalous, NaN during the warm-up. Scores are causal: the score at
``t`` uses rows up to ``t`` only, so appending rows never changes earlier scores.
Alarms are a separate step: the detector's threshold (``thresholds``) and alarm
value (``alarm_values``) go through the one rule in :mod:`detectors.alarms`.

Two classes:

* :class:`Detector`, the contract: what the registry, the live loop and the
  backtests rely on. Class settings say what kind of detector it is
  (``supervised``: ``fit(frames, labels)`` learns from labelled examples, not
  from the watched series; ``probability_output``: scores are P(event) in
  [0, 1]; ``event_kind``: what its events are called; ``live_defaults``:
  hyper-parameters the live loop uses unless the config sets them), so no
  caller ever branches on a detector's name. The pump-and-dump classifier
  implements it directly.
* :class:`SeriesDetector`, the template for unsupervised detectors on one
  series (candles or any numeric columns). Subclasses implement three hooks
  and the base does the rest (validation, features, scaling, the threshold
  policy, batching, save/load)::

    _fit_model(train: list[ndarray (n_i, n_features)]) -> None
    _score_rows(x: ndarray (n, n_features)) -> ndarray (n,)       # one series
    _score_last(xs: list[ndarray (n_i, n_features)], last_n) -> list[ndarray (last_n,)]  # all at once

  plus ``model_warmup`` (rows of features the model needs before its first
  score). Keras detectors also implement ``_save_model``/``_load_model``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from core.config import ThresholdConfig
from core.errors import BotError, DetectorError
from detectors.alarms import fires, suppress_repeats
from detectors.features import (
    FeatureSpec,
    RobustScaler,
    build_features,
    check_frame,
    features_from_values,
    fit_daily_profile,
    frame_times,
    infer_spec,
    raw_values,
)
from detectors.metadata import check_param_types, check_series_metadata, one_line_reason
from detectors.thresholds import ThresholdPolicy, make_threshold, threshold_from_dict

__all__ = ["METADATA_FILE", "Detector", "SeriesDetector", "as_frames", "saved_detector_name"]

log = logging.getLogger(__name__)
METADATA_FILE = "metadata.json"
FORMAT_VERSION = 1


def _rows_per_day(frame: pd.DataFrame) -> int:
    """Rows in one day at the frame's median step (0 when that is not 4 to 2016 rows: no daily season)."""
    diffs = np.diff(frame_times(frame))
    step = float(np.median(diffs[diffs > 0])) if (diffs > 0).any() else 0.0
    rows = round(86_400.0 / step) if step > 0 else 0
    return int(rows) if 4 <= rows <= 2016 else 0


def as_frames(frames: pd.DataFrame | Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """One frame or a symbol -> frame mapping, as a dict."""
    if isinstance(frames, pd.DataFrame):
        return {"series": frames}
    if not frames:
        raise DetectorError("no frames given")
    return dict(frames)


def saved_detector_name(directory: str | Path) -> str:
    """The registered name of the detector saved in ``directory`` (from its metadata file)."""
    path = Path(directory)
    for meta_file in sorted(path.glob("*.json")):
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        name = meta.get("detector", meta.get("name")) if isinstance(meta, dict) else None
        if isinstance(name, str):
            return name
    raise DetectorError(f"no saved detector in {path} (no metadata file naming a detector)")


class Detector(ABC):
    """The contract: fit, score (causal, higher = more anomalous), threshold, save/load.

    Learned state ends in ``_``; ``__init__`` only stores hyper-parameters.
    """

    name: ClassVar[str] = "base"
    requires_training: ClassVar[bool] = True
    #: ``fit(frames, labels)`` learns from labelled examples (e.g. the synthetic market's planted pumps)
    supervised: ClassVar[bool] = False
    #: scores are probabilities in [0, 1]; severity is judged on that scale
    probability_output: ClassVar[bool] = False
    #: the ``kind`` of the events it raises
    event_kind: ClassVar[str] = "anomaly"
    #: hyper-parameters the live loop uses when the config sets none (e.g. a shorter pretraining)
    live_defaults: ClassVar[dict[str, Any]] = {}

    params: dict[str, Any]

    @property
    @abstractmethod
    def warmup(self) -> int:
        """Rows before the first score."""

    @abstractmethod
    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        """Learn from training frames (one symbol, or many for a shared model); ``labels`` if supervised."""

    @abstractmethod
    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Anomaly score per row of ``frame`` (aligned to its index), NaN during warm-up; causal."""

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """The last ``last_n`` scores of every symbol; override to score all symbols in one model call."""
        return {sym: self.score(frame).iloc[-last_n:] for sym, frame in frames.items()}

    @abstractmethod
    def thresholds(self, scores: pd.Series) -> pd.Series:
        """Causal threshold per point."""

    def alarm_values(self, scores: pd.Series) -> pd.Series:
        """What is compared with the threshold (the raw score unless the policy transforms it)."""
        return scores

    @property
    def suppress_rows(self) -> int:
        """Rows after an alarm run's start in which a new run is dropped (one incident, one alert)."""
        return 0

    @property
    def alarm_lookback(self) -> int:
        """Past scores the alarm value and threshold of a row depend on (0: that row's score alone).

        The live loop carries this many recent scores per symbol from cycle to cycle
        (``detectors.alarm_stream``), so its alarms equal those of the whole series.
        """
        return 0

    def last_thresholds(self, scores: pd.Series, n: int) -> pd.Series:
        """``thresholds(scores)`` of the last ``n`` rows; override when computing only those is cheaper."""
        return self.thresholds(scores).iloc[len(scores) - n :]

    def constant_threshold(self) -> float | None:
        """The threshold when it is one number for every bar and the raw score is what is compared.

        Optional (default None: unknown). Lets a caller holding hundreds of symbols' scores skip,
        with one vectorised comparison, the symbols that cannot fire; the alarms themselves
        still come from the one rule (``detectors.alarms``), symbol by symbol.
        """
        return None

    def is_anomaly(self, scores: pd.Series) -> pd.Series:
        """Boolean alarm per point under the one rule of :mod:`detectors.alarms` (False during warm-up)."""
        hit = fires(self.alarm_values(scores), self.thresholds(scores)).rename("is_anomaly")
        return suppress_repeats(hit, self.suppress_rows)

    @abstractmethod
    def save(self, directory: str | Path) -> Path:
        """Write the fitted detector (native model files plus JSON metadata; never pickle)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a detector saved by :meth:`save`."""


class SeriesDetector(Detector):
    """Template for unsupervised detectors on one series: hyper-parameters in, fitted scaling and threshold out.

    Parameters
    ----------
    columns : list of str, optional
        Input columns to use directly. Default: candle features if OHLCV is present,
        else every numeric column.
    threshold : ThresholdConfig or dict, optional
        The alarm policy; default ``default_threshold`` of the class.
    random_state : int
        Seed for anything random (weights, shuffling).
    norm_window : int
        Rolling-median length for relative volume (candle mode).
    inputs : list of str, optional
        Optional extra input columns in candle mode (on-chain metrics such as
        ``onchain_active_addresses``, order-book features such as ``book_imbalance_1pct``),
        each judged against its previous ``input_window`` rows; missing values read as normal.
    """

    default_threshold: ClassVar[dict[str, Any]] = {"policy": "k_sigma", "k": 4.0}
    #: the default on raw series (``columns`` mode); None: ``default_threshold``. Chosen at fit time.
    default_threshold_columns: ClassVar[dict[str, Any] | None] = None
    #: fraction of each symbol's training rows (the latest part) held out to fit the threshold
    calibration_fraction: ClassVar[float] = 0.0
    #: scale features by the training median/MAD (clipped to +-50); scale-free detectors turn it off
    robust_scaling: ClassVar[bool] = True
    #: bar length (s) the candle defaults were tuned on (the synthetic market is hourly): on shorter
    #: bars a default fixed level (``static``, ``k_sigma``) is raised so its alarms per hour stay
    #: those of hourly bars (``ThresholdPolicy.fit_tail``); None: never
    reference_bar_s: ClassVar[float | None] = 3600.0

    def __init__(
        self,
        *,
        columns: list[str] | None = None,
        threshold: ThresholdConfig | dict[str, Any] | None = None,
        random_state: int = 0,
        norm_window: int = 48,
        inputs: list[str] | None = None,
        input_window: int = 720,
        seasonal: bool = False,
        **params: Any,
    ) -> None:
        if isinstance(threshold, ThresholdConfig):
            threshold = threshold.model_dump(exclude_none=True)
        self.params: dict[str, Any] = {
            "columns": list(columns) if columns else None,
            "threshold": dict(threshold or self.default_threshold),
            "random_state": int(random_state),
            "norm_window": int(norm_window),
            **params,
        }
        if inputs:  # kept out of params when unused, so saved models of before read back unchanged
            self.params["inputs"] = [str(c) for c in inputs]
            self.params["input_window"] = int(input_window)
        if seasonal:  # raw series: each column's change from the same time the day before (kept out when off)
            self.params["seasonal"] = True
        self.threshold_: ThresholdPolicy = make_threshold(self.params["threshold"])
        self._auto_threshold = threshold is None  # the default follows the input mode at fit time
        self.spec_: FeatureSpec | None = None
        self.scaler_: RobustScaler | None = None
        self.train_range_: tuple[int, int] | None = None
        self.fitted_ = False

    # ------------------------------------------------------------------ hooks
    @property
    @abstractmethod
    def model_warmup(self) -> int:
        """Feature rows the model consumes before its first score."""

    @abstractmethod
    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        """Learn from scaled training features, one array (n_i, n_features) per symbol.

        ``calibration`` holds the latest part of each symbol's training rows (held out
        from ``train`` when ``calibration_fraction`` > 0): for early stopping and error scales.
        """

    @abstractmethod
    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        """Scores (n,) for scaled features (n, n_features) of one series; NaN where not computable."""

    def _score_last(self, xs: list[np.ndarray], last_n: int) -> list[np.ndarray]:
        """The last ``last_n`` scores of every series; override to batch all series in one model call."""
        return [self._score_rows(x)[-last_n:] for x in xs]

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 (optional hook)
        """Restore what ``_extra_state`` saved."""

    def _save_model(self, directory: Path) -> None:  # noqa: B027 (optional hook)
        """Write model files (Keras detectors)."""

    def _load_model(self, directory: Path) -> None:  # noqa: B027 (optional hook)
        """Read model files (Keras detectors)."""

    # -------------------------------------------------------------- contract
    @property
    def warmup(self) -> int:
        """Rows before the first score (feature warm-up + model warm-up)."""
        spec_warmup = self.spec_.warmup if self.spec_ is not None else 0
        return spec_warmup + self.model_warmup

    @property
    def batch_context(self) -> int:
        """Rows of history ``score_batch`` feeds per symbol before the scored rows (default: the warm-up).

        Detectors whose score reaches further back than their warm-up (a growing window, a
        state built over the whole series) raise it; the batch then uses as much of it as
        the shortest frame has.
        """
        return self.warmup

    @property
    def input_columns(self) -> tuple[str, ...]:
        """The columns read from each frame (known after fit, or from ``columns``)."""
        if self.spec_ is not None:
            return self.spec_.columns
        return tuple(self.params["columns"] or ())

    def _features(self, frame: pd.DataFrame, *, what: str, min_rows: int | None = None) -> np.ndarray:
        assert self.spec_ is not None
        check_frame(frame, self.spec_, min_rows=self.warmup + 1 if min_rows is None else min_rows, what=what)
        raw = build_features(frame, self.spec_)
        return self.scaler_.transform(raw) if self.scaler_ is not None else raw

    def _infer_spec(self, frame: pd.DataFrame) -> FeatureSpec:
        return infer_spec(
            frame,
            self.params["columns"],
            norm_window=self.params["norm_window"],
            extras=self.params.get("inputs") or (),
            extra_window=self.params.get("input_window", 720),
        )

    def _ensure_spec(self, frame: pd.DataFrame) -> None:
        if self.spec_ is None:
            self.spec_ = self._infer_spec(frame)

    def _check_fitted(self) -> None:
        if self.requires_training and not self.fitted_:
            raise DetectorError(f"detector {self.name!r} is not fitted: call fit() or load a trained model")

    def fit(
        self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None, **kwargs: Any
    ) -> Self:
        """Fit scaling, model and threshold on training frames (one symbol, or many for a shared model).

        Unsupervised: ``labels`` is accepted for the contract's sake and ignored.
        """
        data = as_frames(frames)
        spec = self._infer_spec(next(iter(data.values())))
        if spec.mode == "candles":
            required = list(spec.required)
            usable = [f for f in data.values() if np.isfinite(f[required].to_numpy(dtype="float64")).all()]
            spec = fit_daily_profile([raw_values(f, spec) for f in usable], [frame_times(f) for f in usable], spec)
        if spec.mode == "columns" and self.params.get("seasonal"):
            season = _rows_per_day(next(iter(data.values())))
            if 2 * season > min(len(f) for f in data.values()):
                season = 0  # less than two days to train on: no day before to compare with
            spec = dataclasses.replace(spec, season=season)
        self.spec_ = spec
        if self._auto_threshold and spec.mode == "columns" and self.default_threshold_columns is not None:
            # Raw series (server metrics, counts, traffic) drift and change scale, candle features
            # are already standardised: each mode has its own default, chosen on real data.
            self.params["threshold"] = dict(self.default_threshold_columns)
            self.threshold_ = make_threshold(self.params["threshold"])
        raw = {sym: (f, build_features(f, self.spec_)) for sym, f in data.items()}
        for sym, (frame, _) in raw.items():
            check_frame(frame, self.spec_, min_rows=self.warmup + 2, what=f"training data for {sym}")
        if self.robust_scaling:
            self.scaler_ = RobustScaler.fit(np.concatenate([x for _, x in raw.values()]))
            scaled = [self.scaler_.transform(x) for _, x in raw.values()]
        else:
            scaled = [x for _, x in raw.values()]
        cal_fraction = self.calibration_fraction
        fit_parts, cal_parts = [], []
        for x in scaled:
            n_cal = int(len(x) * cal_fraction)
            if n_cal > self.warmup + 10:
                fit_parts.append(x[:-n_cal])
                cal_parts.append(x[-n_cal - self.warmup :])
            else:
                fit_parts.append(x)
                cal_parts.append(x)
        self._fit_kwargs = kwargs
        self._fit_model(fit_parts, cal_parts)
        self.fitted_ = True
        reference = self.reference_bar_s
        raise_level = (
            self._auto_threshold
            and spec.mode == "candles"
            and reference is not None
            and 0 < spec.step_s < reference
            and self.threshold_.policy in ("static", "k_sigma")
        )
        if self.threshold_.policy != "static" or raise_level:  # a plain static threshold learns nothing from them
            train_scores = np.concatenate([self._score_rows(x) for x in cal_parts])
            if self.threshold_.policy != "static":
                self.threshold_.fit(train_scores)
            if raise_level and reference is not None:
                # The default was tuned on hourly bars: 12 times as many 5-minute bars would raise 12 times
                # as many alarms per hour at the same level per bar.
                self.threshold_.rarer = reference / spec.step_s
                self.threshold_.fit_tail(train_scores)
        starts = [int(f.index[0].value // 1_000_000) for f in data.values()]
        ends = [int(f.index[-1].value // 1_000_000) for f in data.values()]
        self.train_range_ = (min(starts), max(ends))
        log.info("fitted %s on %d series, %d rows", self.name, len(data), sum(len(f) for f in data.values()))
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """Anomaly score per row of ``frame`` (aligned to its index), NaN during warm-up; causal."""
        self._check_fitted()
        self._ensure_spec(frame)
        x = self._features(frame, what=f"{self.name} input")
        scores = self._score_rows(x)
        scores[: self.warmup] = np.nan
        return pd.Series(scores, index=frame.index, name="score")

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """The last ``last_n`` scores of every symbol; all windows go through the model in one call."""
        self._check_fitted()
        if not frames:
            return {}
        self._ensure_spec(next(iter(frames.values())))
        need = self.warmup + last_n
        shortest = min(len(f) for f in frames.values())
        tail = max(need, min(self.batch_context + last_n, shortest))
        assert self.spec_ is not None
        spec = self.spec_
        required = list(spec.required)
        raws, times = [], []
        for sym, f in frames.items():
            if len(f) < need:
                raise DetectorError(f"{self.name} input for {sym}: needs at least {need} rows, got {len(f)}")
            missing = [c for c in required if c not in f.columns]
            if missing:
                raise DetectorError(f"{self.name} input for {sym}: missing column(s) {', '.join(missing)}")
            raws.append(raw_values(f, spec, tail=tail))
            times.append(frame_times(f, tail=tail))
        stacked = np.stack(raws)  # (symbols, need, columns): one vectorised feature pass for all
        bad = ~np.isfinite(stacked[..., : len(required)]).all(axis=(1, 2))  # optional inputs come last
        if bad.any():
            sym = list(frames)[int(np.flatnonzero(bad)[0])]
            raise DetectorError(f"{self.name} input for {sym}: missing or non-finite values in the last {tail} rows")
        x = features_from_values(stacked, spec, np.stack(times))
        if self.scaler_ is not None:
            x = self.scaler_.transform(x)
        outs = self._score_last(list(x), last_n)
        tails: dict[int, pd.Index] = {}  # frames that share an index (the live cycle's) share its tail

        def tail(index: pd.Index) -> pd.Index:
            found = tails.get(id(index))
            if found is None:
                found = tails[id(index)] = index[-last_n:]
            return found

        return {
            sym: pd.Series(np.asarray(out, dtype="float64"), index=tail(f.index), name="score", copy=False)
            for (sym, f), out in zip(frames.items(), outs, strict=True)
        }

    def thresholds(self, scores: pd.Series) -> pd.Series:
        """Causal threshold per point from the fitted policy."""
        return self.threshold_.thresholds(scores)

    def alarm_values(self, scores: pd.Series) -> pd.Series:
        """The policy's transform of the scores (telemanom's smoothing under ``dynamic``)."""
        return self.threshold_.transform(scores)

    @property
    def suppress_rows(self) -> int:
        return self.threshold_.suppress

    @property
    def alarm_lookback(self) -> int:
        return self.threshold_.lookback

    def last_thresholds(self, scores: pd.Series, n: int) -> pd.Series:
        return self.threshold_.thresholds_last(scores, n)

    def constant_threshold(self) -> float | None:
        """``static`` and ``k_sigma`` compare the raw score with one fitted level; the others look at history."""
        from detectors.thresholds import KSigmaThreshold, StaticThreshold

        policy = self.threshold_
        if type(policy) in (StaticThreshold, KSigmaThreshold) and policy.fitted_:
            level = policy.level  # what thresholds() gives every row (the bar-length raise included)
            if np.isfinite(level):
                return float(level)
        return None

    # --------------------------------------------------------------- storage
    def save(self, directory: str | Path) -> Path:
        """Write ``metadata.json`` (+ the native ``.keras`` model for neural detectors); never pickle."""
        self._check_fitted()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self._save_model(path)
        meta = {
            "format": FORMAT_VERSION,
            "detector": self.name,
            "params": self.params,
            "features": self.spec_.to_dict() if self.spec_ else None,
            "scaler": self.scaler_.to_dict() if self.scaler_ else None,
            "threshold": self.threshold_.to_dict(),
            "train_range_ms": list(self.train_range_) if self.train_range_ else None,
            "fitted": self.fitted_,
            "state": self._extra_state(),
        }
        (path / METADATA_FILE).write_text(json.dumps(meta, indent=1, allow_nan=True), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Rebuild a detector of this class; ``detectors.registry.load_detector`` finds the class by name."""
        path = Path(directory)
        try:
            meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DetectorError(f"no saved detector in {path} ({METADATA_FILE} not found)") from None
        except json.JSONDecodeError as err:
            raise DetectorError(f"{path / METADATA_FILE}: invalid JSON: {err}") from None
        except UnicodeDecodeError:
            raise DetectorError(f"{path / METADATA_FILE}: not UTF-8 text") from None
        meta = check_series_metadata(
            path / METADATA_FILE,
            meta,
            name=cls.name,
            format_version=FORMAT_VERSION,
            requires_training=cls.requires_training,
        )
        try:  # the types are checked; what is left is the detector's own judgement of its parameters
            check_param_types(path / METADATA_FILE, meta["params"], cls().params)
            det = cls(**meta["params"])
            det.spec_ = FeatureSpec.from_dict(meta["features"]) if meta["features"] else None
            det.scaler_ = RobustScaler.from_dict(meta["scaler"]) if meta["scaler"] else None
            det.threshold_ = threshold_from_dict(meta["threshold"])
            det.train_range_ = tuple(meta["train_range_ms"]) if meta["train_range_ms"] else None  # type: ignore[assignment]
            det.fitted_ = bool(meta["fitted"])
            det._set_extra_state(meta.get("state") or {})
        except BotError as err:  # DetectorError, or ConfigError from a threshold policy
            raise DetectorError(f"{path / METADATA_FILE}: {one_line_reason(err)}") from None
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise DetectorError(f"{path / METADATA_FILE}: params or state rejected: {one_line_reason(err)}") from None
        det._load_model(path)
        return det

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "threshold")
        return f"{type(self).__name__}({shown})"
