"""``PumpDumpDetector``: the CNN-LSTM P(pump now) on chunk features or one-minute candles.

One class trains and scores at either grain:

* ``fit_table`` / ``score_table``: a La Morgia features table (``read_feature_file``), one
  sequence per row built from the rows of its own event up to it (what ``vigil pumpdump
  train/evaluate`` use);
* ``fit`` / ``score`` / ``score_batch``: candle frames (+ ``social_volume``) per symbol, the
  live loop's path, labelled for training by a ``labels`` frame (``symbol, start, end, kind``
  as the synthetic market writes it). Optional extra inputs (``inputs``: on-chain metrics,
  order-book features) join the market branch as the candle detectors take them
  (``detectors.features``: each against its own previous ``input_window`` rows, missing
  values read as nothing unusual).

The decision threshold is the best-F1 point on a validation share of the *training* events
(split by event, never by row), fixed at fit time and saved with the model.
"""

from __future__ import annotations

import json
import logging
import warnings
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from core.errors import DetectorError
from detectors.base import Detector
from detectors.features import extra_input_features
from detectors.metadata import check_pump_metadata, check_pump_scaler_width
from detectors.onnx_runtime import OnnxModel, export_onnx, load_onnx, onnx_enabled
from detectors.pump.features import (
    LA_MORGIA_COLUMNS,
    SOCIAL_COLUMNS,
    SOCIAL_HISTORY,
    candle_feature_arrays,
    causal_windows,
    feature_columns,
    scale_windows,
)
from detectors.pump.labels import hard_negative_rows, pump_rows, sample_negatives
from detectors.pump.metrics import best_event_f1_threshold, best_f1_threshold, event_folds, event_split
from detectors.pump.net import average_model, member_loss
from detectors.pump.relative import event_change_features, event_relative_features

__all__ = ["CHUNK_RECIPE", "PumpDumpDetector"]

log = logging.getLogger(__name__)
_META = "pump_dump.json"
_MODEL = "model.keras"
_EVENT_BETA = 2.0  # recall counts double: a missed pump costs more than one extra alarm (tuned on dev seeds 5-6)
_OHLCV = ["open", "high", "low", "close", "volume"]
_CHUNK_INPUTS = ("ranked", "relative", "scaled")
_CHUNK_LOSSES = ("bce", "listwise", "listwise+bce", "mixed")
_CHUNK_FITS = ("validation", "crossfit")

#: Settings for the real La Morgia 60 s tables (~50 training events), chosen on split seeds 0-9
#: (docs/pump_dump.md): a small, noisy, wide-and-deep network, trained listwise over events,
#: five members cross-fitted by event. ``vigil pumpdump train`` and bench/eval_pump_dump.py use it;
#: the candle path keeps the class defaults.
CHUNK_RECIPE: dict[str, Any] = {
    "lookback": 4,
    "epochs": 15,
    "filters": 8,
    "lstm_units": 8,
    "dense_units": 8,
    "dropout": 0.3,
    "input_noise": 0.3,
    "wide": True,
    "chunk_inputs": "ranked",
    "chunk_loss": "listwise+bce",
    "chunk_fit": "crossfit",
    "ensemble": 5,
}


def _ohlcv(frame: pd.DataFrame) -> np.ndarray:
    """(n, 5) float array of open, high, low, close, volume without pandas' slow column indexing."""
    return frame.to_numpy(dtype=float, na_value=np.nan)[:, frame.columns.get_indexer(_OHLCV)]


def _social_column(frame: pd.DataFrame) -> np.ndarray:
    if "social_volume" in frame.columns:
        return frame["social_volume"].to_numpy(dtype=float)
    return np.full(len(frame), np.nan)


def _extra_columns(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """(n, k) values of the optional input columns; NaN for a column the frame lacks."""
    return np.stack(
        [
            frame[c].to_numpy(dtype=float, na_value=np.nan) if c in frame.columns else np.full(len(frame), np.nan)
            for c in columns
        ],
        axis=-1,
    )


def _require_positives(y: np.ndarray) -> None:
    if y.sum() == 0:
        raise DetectorError("pump_dump: training data has no positive rows (gt=1 / pump labels)")


class PumpDumpDetector(Detector):
    """CNN-LSTM pump detector; higher score = more likely a pump is under way now.

    Supervised (trained on labelled pumps, never on the series it watches) and
    its scores are probabilities; the live loop pretrains it with 15 epochs
    (the setting of bench/synthetic_pump_dump.py, which keeps pretraining near
    a minute) unless the config says otherwise.
    """

    name: ClassVar[str] = "pump_dump"
    requires_training: ClassVar[bool] = True
    supervised: ClassVar[bool] = True
    probability_output: ClassVar[bool] = True
    event_kind: ClassVar[str] = "pump_dump"
    live_defaults: ClassVar[dict[str, Any]] = {"epochs": 15}

    def __init__(
        self,
        *,
        lookback: int = 32,
        epochs: int = 30,
        batch_size: int = 64,
        filters: int = 16,
        lstm_units: int = 32,
        dense_units: int = 16,
        dropout: float = 0.1,
        input_noise: float = 0.0,
        wide: bool = False,
        social_dropout: float = 0.5,
        validation_share: float = 0.25,
        max_negative_ratio: float = 30.0,
        focal: bool = False,
        chunk_inputs: str = "relative",
        chunk_loss: str = "bce",
        chunk_fit: str = "validation",
        ensemble: int = 1,
        random_state: int = 0,
        inputs: list[str] | None = None,
        input_window: int = 720,
    ) -> None:
        if lookback < 2:
            raise DetectorError(f"pump_dump.lookback: must be >= 2, got {lookback}")
        if not 0.0 < validation_share < 1.0:
            raise DetectorError(f"pump_dump.validation_share: must be in (0, 1), got {validation_share}")
        if ensemble < 1:
            raise DetectorError(f"pump_dump.ensemble: must be >= 1, got {ensemble}")
        if chunk_inputs not in _CHUNK_INPUTS:
            raise DetectorError(f"pump_dump.chunk_inputs: must be one of {_CHUNK_INPUTS}, got {chunk_inputs!r}")
        if chunk_loss not in _CHUNK_LOSSES:
            raise DetectorError(f"pump_dump.chunk_loss: must be one of {_CHUNK_LOSSES}, got {chunk_loss!r}")
        if chunk_fit not in _CHUNK_FITS:
            raise DetectorError(f"pump_dump.chunk_fit: must be one of {_CHUNK_FITS}, got {chunk_fit!r}")
        if chunk_fit == "crossfit" and ensemble < 2:
            raise DetectorError(f"pump_dump.ensemble: crossfit needs >= 2 members (one per fold), got {ensemble}")
        if not 0.0 <= dropout < 1.0 or input_noise < 0.0:
            raise DetectorError(
                f"pump_dump.dropout/input_noise: need 0 <= dropout < 1 and noise >= 0, got {dropout}, {input_noise}"
            )
        self.lookback = lookback
        self.epochs = epochs
        self.batch_size = batch_size
        self.filters = filters
        self.lstm_units = lstm_units
        self.dense_units = dense_units
        self.dropout = dropout
        self.input_noise = input_noise
        self.wide = wide
        self.social_dropout = social_dropout
        self.validation_share = validation_share
        self.max_negative_ratio = max_negative_ratio
        self.focal = focal
        self.chunk_inputs = chunk_inputs
        self.chunk_loss = chunk_loss
        self.chunk_fit = chunk_fit
        self.ensemble = ensemble
        self.random_state = random_state
        self.inputs = [str(c) for c in inputs] if inputs else None
        self.input_window = int(input_window)
        self.grain_: str | None = None
        self.threshold_: float | None = None
        self._model: Any = None
        self._model_dir: Path | None = None  # saved Keras model not loaded yet: scores go through ONNX Runtime
        self._onnx: OnnxModel | None = None
        self.scaler_: tuple[np.ndarray, np.ndarray] | None = None
        #: saved with the model: e.g. ``stream`` (chunk_ms, window of the chunk features), ``budget`` (the
        #: calibration curve of ``detectors.pump.budget``), ``recipe`` (how a shipped model was made)
        self.extra_: dict[str, Any] = {}

    @property
    def model_(self) -> Any:
        """The Keras model (read from disk on first use when the detector is served through ONNX)."""
        if self._model is None and self._model_dir is not None:
            self._model = _read_keras(self._model_dir)
        return self._model

    @model_.setter
    def model_(self, model: Any) -> None:
        self._model, self._model_dir, self._onnx = model, None, None

    @property
    def served_by(self) -> str:
        """``"onnx"`` or ``"keras"``: what scores go through."""
        return "onnx" if self._onnx is not None else "keras"

    # -- contract helpers -------------------------------------------------------------------
    @property
    def warmup(self) -> int:
        """Candle rows before the first score (the first full window)."""
        return self.lookback - 1

    @property  # type: ignore[override]
    def params(self) -> dict[str, Any]:
        """The hyper-parameters, as ``__init__`` takes them."""
        keys = ["lookback", "epochs", "batch_size", "filters", "lstm_units", "dense_units", "dropout", "input_noise"]
        keys += ["wide", "social_dropout", "validation_share", "max_negative_ratio", "focal", "chunk_inputs"]
        keys += ["chunk_loss", "chunk_fit", "ensemble"]
        keys += ["random_state"]
        if self.inputs:  # only when used, so models saved before read back unchanged
            keys += ["inputs", "input_window"]
        return {k: getattr(self, k) for k in keys}

    def _check_fitted(self, grain: str | None = None) -> None:
        if (self._model is None and self._onnx is None) or self.threshold_ is None:
            raise DetectorError("pump_dump: not fitted; call fit/fit_table or load a saved model first")
        if grain is not None and self.grain_ != grain:
            raise DetectorError(f"pump_dump: model was trained on {self.grain_!r} features, cannot score {grain!r}")

    def thresholds(self, scores: pd.Series) -> pd.Series:
        """The fixed training threshold at every point (a static policy: it never looks at ``scores``)."""
        self._check_fitted()
        return pd.Series(float(self.threshold_), index=scores.index)  # type: ignore[arg-type]

    def constant_threshold(self) -> float | None:
        """The fixed training threshold (see ``Detector.constant_threshold``)."""
        return None if self.threshold_ is None else float(self.threshold_)

    # -- arrays -----------------------------------------------------------------------------
    def _windows(
        self, market: np.ndarray, groups: np.ndarray, grain: str, rows: np.ndarray | None = None
    ) -> np.ndarray:
        cols, scale = feature_columns(grain)
        w = scale_windows(causal_windows(market, groups, self.lookback, rows), [cols.index(c) for c in scale])
        if self.scaler_ is not None:
            mean, std = self.scaler_
            w = np.clip((w - mean) / std, -20.0, 20.0).astype(np.float32)
        return w

    def _table_inputs(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        cols, scale = feature_columns("chunks")
        events = table["pump_index"].to_numpy()
        if self.chunk_inputs == "scaled":
            market = self._windows(table[cols].to_numpy(dtype=float), events, "chunks")
        else:  # steps and levels against the event's own earlier rows (+ ranked changes), plus time of day
            values = table[scale].to_numpy(dtype=float)
            parts = [event_relative_features(values, events)]
            if self.chunk_inputs == "ranked":
                parts.append(event_change_features(values, events))
            parts.append(table[[c for c in cols if c not in scale]].to_numpy(dtype=np.float32))
            market = causal_windows(np.concatenate(parts, axis=1), events, self.lookback)
            if self.scaler_ is not None:
                mean, std = self.scaler_
                market = np.clip((market - mean) / std, -20.0, 20.0).astype(np.float32)
        n = len(market)
        return {
            "market": market,
            "social": np.zeros((n, self.lookback, len(SOCIAL_COLUMNS)), dtype=np.float32),
            "has_social": np.zeros((n, 1), dtype=np.float32),
        }

    def _candle_inputs(
        self, frames: list[tuple[str, pd.DataFrame]], last_n: int | None = None
    ) -> dict[str, np.ndarray]:
        """Model inputs for the last ``last_n`` bars (all bars if None) of every frame, in frame order.

        Frames of equal length are stacked and their features computed in one numpy pass; only
        the rows the windows need are touched (``last_n + lookback + SOCIAL_HISTORY``).
        """
        history = max(SOCIAL_HISTORY, self.input_window if self.inputs else 0)
        need = None if last_n is None else last_n + self.lookback + history
        tails: list[pd.DataFrame] = []
        by_len: dict[int, list[int]] = {}
        for i, (symbol, frame) in enumerate(frames):
            missing = [c for c in _OHLCV if c not in frame.columns]
            if missing:
                raise DetectorError(f"pump_dump: candle frame of {symbol} lacks column(s) {', '.join(missing)}")
            tail = frame if need is None else frame.iloc[-need:]
            tails.append(tail)
            by_len.setdefault(len(tail), []).append(i)
        parts: list[dict[str, np.ndarray]] = [{}] * len(frames)
        for length, ids in by_len.items():
            ohlcv = np.stack([_ohlcv(tails[i]) for i in ids])
            social = np.stack([_social_column(tails[i]) for i in ids])
            market, soc, has = candle_feature_arrays(ohlcv, social)
            if self.inputs:
                extra = np.stack([_extra_columns(tails[i], self.inputs) for i in ids])  # (symbols, bars, k)
                market = np.concatenate([market, extra_input_features(extra, self.input_window)], axis=-1)
            n_sym = len(ids)
            groups = np.repeat(np.arange(n_sym), length)
            take = length if last_n is None else min(last_n, length)
            # only the windows that get scored: the last `take` rows of every symbol
            rows = (np.arange(n_sym)[:, None] * length + np.arange(length - take, length)[None, :]).reshape(-1)
            mw = self._windows(market.reshape(n_sym * length, -1), groups, "candles", rows)
            sw = causal_windows(soc.reshape(n_sym * length, -1), groups, self.lookback, rows)
            hs = has.reshape(-1, 1)[rows].astype(np.float32)
            for j, i in enumerate(ids):
                sel = slice(j * take, (j + 1) * take)
                parts[i] = {"market": mw[sel], "social": sw[sel], "has_social": hs[sel]}
        return self._concat(parts) if parts else self._concat([self._empty_inputs()])

    def _empty_inputs(self) -> dict[str, np.ndarray]:
        n_market = len(feature_columns("candles")[0]) + len(feature_columns("candles")[1]) + len(self.inputs or ())
        return {
            "market": np.zeros((0, self.lookback, n_market), np.float32),
            "social": np.zeros((0, self.lookback, len(SOCIAL_COLUMNS)), np.float32),
            "has_social": np.zeros((0, 1), np.float32),
        }

    @staticmethod
    def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        return {k: np.concatenate([p[k] for p in parts]) for k in ("market", "social", "has_social")}

    def _predict(self, inputs: dict[str, np.ndarray], model: Any = None) -> np.ndarray:
        if len(inputs["market"]) == 0:
            return np.zeros(0)
        if model is None and self._onnx is not None:
            return np.asarray(self._onnx(inputs), dtype=float).reshape(-1)
        out = (self.model_ if model is None else model).predict_on_batch(inputs)
        return np.asarray(out, dtype=float).reshape(-1)

    # -- training ---------------------------------------------------------------------------
    def _train(
        self,
        inputs: dict[str, np.ndarray],
        y: np.ndarray,
        events: np.ndarray,
        val_mask: np.ndarray,
        hard: np.ndarray | None = None,
        *,
        loss: str = "bce",
    ) -> None:
        """Fit scaler, network and threshold.

        ``hard`` (bool per row, optional) marks negatives to keep first when negatives are capped
        (``sample_negatives``; None = a plain random draw); ``loss`` other than ``"bce"`` trains
        listwise over whole events (chunk tables).
        """
        _require_positives(y)
        inputs = self._fit_scaler(inputs, ~val_mask)
        fit_idx = np.flatnonzero(~val_mask)
        # members differ only in their weight/shuffle seed
        members = self._fit_members(inputs, y, events, [fit_idx] * self.ensemble, hard, loss)
        if len(members) > 1:
            self.model_ = average_model(members)
        val_idx = np.flatnonzero(val_mask)
        val_scores = self._predict({k: v[val_idx] for k, v in inputs.items()})
        if self.grain_ == "candles":  # pumps span several bars: pick the threshold on events, not rows
            self.threshold_ = best_event_f1_threshold(y[val_idx], val_scores, events[val_idx], beta=_EVENT_BETA)
        else:
            self.threshold_ = best_f1_threshold(y[val_idx], val_scores)
        log.info("pump_dump: trained on %d rows, threshold %.4f", len(fit_idx), self.threshold_)

    def _train_crossfit(self, inputs: dict[str, np.ndarray], y: np.ndarray, events: np.ndarray, loss: str) -> None:
        """Fit ``ensemble`` members, member ``k`` on every training event outside fold ``k``.

        Why: with ~50 training events a fixed validation share withholds a quarter of the few
        pumps from every member. Here each member sees ``(k-1)/k`` of the events and together they
        see all; the threshold is the best-F1 point on the out-of-fold scores (each event scored
        by the member that never saw it), so it still comes from training events only, split by
        event. The saved model averages the members.
        """
        _require_positives(y)
        n_events = len(np.unique(events))
        if n_events < self.ensemble:
            raise DetectorError(f"pump_dump: crossfit needs >= {self.ensemble} training events, got {n_events}")
        inputs = self._fit_scaler(inputs, np.ones(len(y), dtype=bool))
        folds = event_folds(events, self.ensemble, self.random_state)
        fit_sets = [np.flatnonzero(folds != k) for k in range(self.ensemble)]
        members = self._fit_members(inputs, y, events, fit_sets, None, loss)
        out_of_fold = np.zeros(len(y))
        for k, member in enumerate(members):
            held = np.flatnonzero(folds == k)
            out_of_fold[held] = self._predict({key: v[held] for key, v in inputs.items()}, member)
        self.model_ = average_model(members)
        self.threshold_ = best_f1_threshold(y, out_of_fold)
        log.info(
            "pump_dump: %d cross-fitted members, %d events, threshold %.4f", self.ensemble, n_events, self.threshold_
        )

    def _fit_members(
        self,
        inputs: dict[str, np.ndarray],
        y: np.ndarray,
        events: np.ndarray,
        fit_sets: list[np.ndarray],
        hard: np.ndarray | None,
        loss: str,
    ) -> list[Any]:
        """One member per entry of ``fit_sets`` (its training rows), member ``k`` seeded ``random_state + k``."""
        import keras

        members = []
        for k, fit_idx in enumerate(fit_sets):
            keras.utils.set_random_seed(self.random_state + k)
            members.append(self._train_member(inputs, y, events, fit_idx, hard, member_loss(loss, k)))
        return members

    def _fit_scaler(self, inputs: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
        """Fit the market z-score on ``rows`` (bool mask of training rows) and return scaled inputs."""
        fit_rows = inputs["market"][rows].reshape(-1, inputs["market"].shape[2])
        mean, std = fit_rows.mean(axis=0), fit_rows.std(axis=0)
        self.scaler_ = (mean.astype(np.float32), np.where(std > 1e-9, std, 1.0).astype(np.float32))
        return {**inputs, "market": np.clip((inputs["market"] - mean) / self.scaler_[1], -20, 20).astype(np.float32)}

    def _train_member(
        self,
        inputs: dict[str, np.ndarray],
        y: np.ndarray,
        events: np.ndarray,
        fit_idx: np.ndarray,
        hard: np.ndarray | None,
        loss: str,
    ) -> Any:
        """One freshly built network trained on rows ``fit_idx``; returns it (also left in ``model_``)."""
        if loss != "bce":
            self._train_listwise(inputs, y, events, fit_idx, loss)
        else:
            self._train_rows(inputs, y, fit_idx, hard)
        return self.model_

    def _build(self, inputs: dict[str, np.ndarray]) -> None:
        from detectors.pump.net import build_pump_network

        self.model_ = build_pump_network(
            self.lookback,
            inputs["market"].shape[2],
            inputs["social"].shape[2],
            filters=self.filters,
            lstm_units=self.lstm_units,
            dense_units=self.dense_units,
            dropout=self.dropout,
            input_noise=self.input_noise,
            wide=self.wide,
            focal=self.focal,
        )

    def _train_listwise(
        self, inputs: dict[str, np.ndarray], y: np.ndarray, events: np.ndarray, fit_idx: np.ndarray, loss: str
    ) -> None:
        from detectors.pump.listwise import fit_listwise

        self._build(inputs)
        fit_listwise(
            self.model_,
            {k: v[fit_idx] for k, v in inputs.items()},
            y[fit_idx],
            events[fit_idx],
            epochs=self.epochs,
            bce_weight=1.0 if loss == "listwise+bce" else 0.0,
        )

    def _train_rows(
        self, inputs: dict[str, np.ndarray], y: np.ndarray, fit_idx: np.ndarray, hard: np.ndarray | None
    ) -> None:
        """Row-wise weighted BCE on windows: negatives capped, social randomly dropped (the candle recipe)."""
        rng = np.random.default_rng(self.random_state)
        pos, neg = fit_idx[y[fit_idx] == 1], fit_idx[y[fit_idx] == 0]
        cap = int(max(len(pos), 1) * self.max_negative_ratio)
        neg = sample_negatives(neg, cap, rng, hard)
        idx = np.concatenate([pos, neg])
        x = {k: v[idx] for k, v in inputs.items()}
        yt = y[idx].astype(np.float32)
        with_social = np.flatnonzero(x["has_social"][:, 0] > 0)
        if len(with_social) and self.social_dropout > 0:
            drop = with_social[rng.random(len(with_social)) < self.social_dropout]
            extra = {k: v[drop].copy() for k, v in x.items()}
            extra["social"][:] = 0.0
            extra["has_social"][:] = 0.0
            x = {k: np.concatenate([x[k], extra[k]]) for k in x}
            yt = np.concatenate([yt, yt[drop]])
        n_pos = max(float(yt.sum()), 1.0)
        weights = {0: 1.0, 1: float((len(yt) - n_pos) / n_pos)}
        self._build(inputs)
        self.model_.fit(
            x, yt, epochs=self.epochs, batch_size=self.batch_size, class_weight=weights, shuffle=True, verbose=0
        )

    def fit_table(self, table: pd.DataFrame) -> Self:
        """Train on a La Morgia features table (rows of ``read_feature_file``; label ``gt``)."""
        self.scaler_ = None
        events = table["pump_index"].to_numpy()
        self.grain_ = "chunks"
        inputs, y = self._table_inputs(table), table["gt"].to_numpy()
        if self.chunk_fit == "crossfit":
            self._train_crossfit(inputs, y, events, self.chunk_loss)
            return self
        val_mask = event_split(events, self.validation_share, self.random_state)
        self._train(inputs, y, events, val_mask, loss=self.chunk_loss)
        return self

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        """Train on candle frames; ``labels`` (``symbol, start, end, kind``) mark the pumps.

        A single frame may instead carry a 0/1 ``is_pump`` column. Validation = the last
        ``validation_share`` of every symbol's bars (by time, never random rows).
        """
        frames = {"_": frames} if isinstance(frames, pd.DataFrame) else dict(frames)
        self.scaler_ = None
        parts, ys, groups, vals, hards = [], [], [], [], []
        for gid, (symbol, frame) in enumerate(frames.items()):
            if labels is not None:
                y = pump_rows(frame, labels, symbol)
            elif "is_pump" in frame.columns:
                y = frame["is_pump"].fillna(0).to_numpy().astype(np.int64)
            else:
                raise DetectorError(f"pump_dump: no labels for {symbol}: pass labels= or an is_pump column")
            no_hard = np.zeros(len(frame), dtype=bool)
            hards.append(hard_negative_rows(frame, labels, symbol) if labels is not None else no_hard)
            parts.append(self._candle_inputs([(symbol, frame)]))
            ys.append(y)
            groups.append(np.full(len(frame), gid))
            vals.append(np.arange(len(frame)) >= int(len(frame) * (1 - self.validation_share)))
        self.grain_ = "candles"
        inputs, y, groups_, val = self._concat(parts), np.concatenate(ys), np.concatenate(groups), np.concatenate(vals)
        self._train(inputs, y, groups_, val, hard=np.concatenate(hards) if labels is not None else None)
        return self

    # -- scoring ----------------------------------------------------------------------------
    def score_table(self, table: pd.DataFrame) -> np.ndarray:
        """P(pump) per row of a features table, shape (n_rows,); each uses its event's rows up to it."""
        self._check_fitted("chunks")
        return self._predict(self._table_inputs(table))

    def score(self, frame: pd.DataFrame) -> pd.Series:
        """P(pump) per bar of one symbol's candle frame; NaN during warm-up; causal."""
        self._check_fitted("candles")
        if frame.empty:
            return pd.Series(dtype=float, index=frame.index)
        scores = pd.Series(self._predict(self._candle_inputs([("frame", frame)])), index=frame.index, dtype=float)
        scores.iloc[: self.warmup] = np.nan
        return scores

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        """The last ``last_n`` scores of every symbol; all windows go through the model in one call."""
        self._check_fitted("candles")
        if last_n < 1:
            raise DetectorError(f"pump_dump.score_batch: last_n must be >= 1, got {last_n}")
        out: dict[str, pd.Series] = {s: pd.Series(dtype=float, index=f.index[:0]) for s, f in frames.items() if f.empty}
        items = [(s, f) for s, f in frames.items() if not f.empty]
        if not items:
            return out
        scores = self._predict(self._candle_inputs(items, last_n=last_n))
        pos = 0
        for symbol, frame in items:
            take = min(last_n, len(frame))
            values = scores[pos : pos + take]
            pos += take
            warm = np.arange(len(frame) - take, len(frame)) < self.warmup
            out[symbol] = pd.Series(np.where(warm, np.nan, values), index=frame.index[len(frame) - take :], dtype=float)
        return out

    def score_chunk_windows(self, windows: np.ndarray) -> np.ndarray:
        """P(pump) of the newest row of each window of raw La Morgia rows, shape (n, lookback, 12) -> (n,).

        The live stream's path (``detectors.pump.live_chunks.ChunkBook.windows``): the same inputs
        ``score_table`` builds for a row from its own and earlier rows, for a model trained with
        ``chunk_inputs="scaled"`` (whose inputs depend on the window only, not on an event's start).
        All windows go through the network in one call.
        """
        self._check_fitted("chunks")
        if self.chunk_inputs != "scaled":
            raise DetectorError(
                f"pump_dump: live chunk scoring needs a model trained with chunk_inputs='scaled', "
                f"this one uses {self.chunk_inputs!r}"
            )
        windows = np.asarray(windows, dtype=float)
        if windows.ndim != 3 or windows.shape[1] != self.lookback or windows.shape[2] != len(LA_MORGIA_COLUMNS):
            raise DetectorError(
                f"pump_dump: expected windows of shape (n, {self.lookback}, {len(LA_MORGIA_COLUMNS)}), "
                f"got {windows.shape}"
            )
        cols, scale = feature_columns("chunks")
        w = scale_windows(windows, [cols.index(c) for c in scale])
        if self.scaler_ is not None:
            mean, std = self.scaler_
            w = np.clip((w - mean) / std, -20.0, 20.0).astype(np.float32)
        n = len(w)
        return self._predict(
            {
                "market": w.astype(np.float32),
                "social": np.zeros((n, self.lookback, len(SOCIAL_COLUMNS)), dtype=np.float32),
                "has_social": np.zeros((n, 1), dtype=np.float32),
            }
        )

    # -- alert budget and shipped models ----------------------------------------------------
    def apply_budget(self, budget: float) -> float:
        """Set the threshold to the lowest one that kept pump-free calibration data under ``budget``
        alert episodes per symbol-week (``extra_["budget"]``, see ``detectors.pump.budget``); returns it."""
        from detectors.pump.budget import BudgetCurve

        self._check_fitted()
        if not budget > 0:
            raise DetectorError(f"pump_dump.alert_budget: must be > 0 alerts per symbol-week, got {budget}")
        curve = self.extra_.get("budget")
        if not curve:
            raise DetectorError("pump_dump: this model has no alert-budget calibration; keep its trained threshold")
        self.threshold_ = BudgetCurve.from_json(curve["curve"]).threshold_for(budget)
        self.extra_["alert_budget"] = budget
        return float(self.threshold_)

    @classmethod
    def pretrained(cls, grain: str, timeframe: str | None = None, *, alert_budget: float | None = None) -> Self | None:
        """The small model shipped in the package for ``grain`` (``"candles"`` at ``timeframe``, or ``"chunks"``).

        None when none ships for it. ``alert_budget`` (alerts per symbol-week on pump-free data)
        replaces the shipped threshold (which is the one for the default budget). How they are made:
        ``bot/pretrain.py``.
        """
        from detectors.pump.pretrained import pretrained_dir

        directory = pretrained_dir(grain, timeframe)
        if directory is None:
            return None
        det = cls.load(directory)
        if alert_budget is not None:
            det.apply_budget(alert_budget)
        return det

    # -- persistence ------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write ``model.keras`` (native Keras) and ``pump_dump.json`` (params, grain, threshold)."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        model = self.model_
        model.save(directory / _MODEL)
        exported = export_onnx(model, directory)  # served by ONNX Runtime from now on, as after a restart
        if exported is not None and onnx_enabled():
            self._onnx = OnnxModel(exported)
        meta = {
            "name": self.name,
            "params": self.params,
            "grain": self.grain_,
            "threshold": self.threshold_,
            "scaler": [v.tolist() for v in self.scaler_] if self.scaler_ is not None else None,
            "features": feature_columns(self.grain_)[0] if self.grain_ else None,
            "extra": self.extra_,
        }
        (directory / _META).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        """Read a saved model; with an ONNX export, scoring never imports TensorFlow."""
        directory = Path(directory)
        meta_path = directory / _META
        if not meta_path.is_file() or not (directory / _MODEL).is_file():
            raise DetectorError(f"{directory}: not a saved pump_dump model (needs {_MODEL} and {_META})")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise DetectorError(f"{meta_path}: not a JSON model description ({err})") from None
        meta = check_pump_metadata(meta_path, meta, grains=("chunks", "candles"))
        try:
            meta["params"].setdefault("chunk_inputs", "scaled")  # models saved before relative inputs existed
            det = cls(**meta["params"])
            det.grain_ = meta["grain"]
            det.extra_ = dict(meta.get("extra") or {})
            det.threshold_ = float(meta["threshold"])
            if meta.get("scaler") is not None:
                det.scaler_ = tuple(np.asarray(v, dtype=np.float32) for v in meta["scaler"])  # type: ignore[assignment]
            current = feature_columns(det.grain_)[0]
        except (ValueError, KeyError, TypeError) as err:
            raise DetectorError(f"{meta_path}: unreadable model metadata ({err})") from None
        if det.grain_ == "candles" and meta.get("features") != current:
            # candle features changed (time of day dropped, gap/body/wicks/ret_z added): old weights do not fit
            raise DetectorError(
                f"{meta_path}: model was trained on candle features {meta.get('features') or 'of an older version'}, "
                f"this version computes {current}; retrain it"
            )
        det._onnx = load_onnx(directory)
        if det._onnx is None:
            det._model = _read_keras(directory)
        else:
            det._model_dir = directory
        if det._model is not None:  # served by Keras: its input width is known now (ONNX keeps TensorFlow out)
            check_pump_scaler_width(meta_path, det.scaler_, det._model)
        return det


def _read_keras(directory: Path) -> Any:
    import keras

    with warnings.catch_warnings():  # a loaded model only scores; its members' unbuilt optimizers do not matter
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        try:
            return keras.models.load_model(directory / _MODEL, safe_mode=True)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as err:
            raise DetectorError(f"{directory / _MODEL}: cannot load the Keras model ({err})") from None
