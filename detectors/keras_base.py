"""Shared machinery of the Keras window detectors: windows, training, batched inference, .keras files.

A subclass says how long a window is, how a window splits into model input and target,
and which Keras builder makes its network. Scores are Merlion-style normalised errors:
``(y - yhat) / sigma`` per feature at the window's last step, with ``sigma`` measured on
held-out calibration rows, reduced over features by the largest absolute value (``reduce="max"``; ``"rms"`` is the
alternative: it dilutes an anomaly seen in one feature only, such as a volume spike), then
smoothed telemanom-style by an exponentially weighted mean over the last few rows (``smooth``,
an EWMA span; 1 turns it off). The smoothing window is finite, so a score still depends on a
fixed number of past rows only and ``score_batch`` gives exactly what ``score`` gives.

Inference never loops over windows: every window of every series goes through one
call of the model (chunked only to bound memory): ONNX Runtime when the saved model
has an ONNX export (``detectors/onnx_runtime.py``; written by :meth:`save`), else a
compiled ``tf.function``. A detector loaded with an export never imports TensorFlow
unless something asks for the Keras model itself (``model_``).
"""

from __future__ import annotations

import logging
import zipfile
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from core.errors import DetectorError
from detectors.base import SeriesDetector
from detectors.features import sliding_windows
from detectors.onnx_runtime import OnnxModel, export_onnx, load_onnx, onnx_enabled
from detectors.thresholds import RAW_SERIES_DEFAULT

__all__ = ["KerasWindowDetector", "MODEL_FILE", "smoothing_weights"]

log = logging.getLogger(__name__)
MODEL_FILE = "model.keras"
_CHUNK = 16384
_SMOOTH_TAIL = 0.005  # weight left out by truncating the EWMA


def smoothing_weights(span: int) -> np.ndarray:
    """Truncated EWMA weights for a span (alpha = 2 / (span + 1)), oldest first, summing to 1.

    The window stops where less than 0.5 % of the weight would remain (8 rows for span 3).
    Span 1 gives ``[1.0]`` (no smoothing).
    """
    if span <= 1:
        return np.ones(1)
    alpha = 2.0 / (span + 1)
    n = int(np.ceil(np.log(_SMOOTH_TAIL) / np.log(1 - alpha)))
    weights = alpha * (1 - alpha) ** np.arange(n)[::-1]
    return weights / weights.sum()


class KerasWindowDetector(SeriesDetector):
    """Common hyper-parameters: ``lookback`` (24), ``epochs`` (20), ``batch_size`` (64), ``lr`` (1e-3),
    ``patience`` (3, early stopping on the calibration rows), ``dropout`` (0.0), ``reduce`` ("max"),
    ``smooth`` (3: EWMA span of the error series, in rows; 1 = raw errors)."""

    calibration_fraction: ClassVar[float] = 0.2
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "k_sigma", "k": 10.0, "suppress": 48}
    # Raw series: Numenta's anomaly likelihood, one alert per incident (chosen on the NAB tuning half).
    default_threshold_columns: ClassVar[dict[str, Any] | None] = RAW_SERIES_DEFAULT

    def __init__(
        self,
        *,
        lookback: int = 24,
        epochs: int = 20,
        batch_size: int = 64,
        lr: float = 1e-3,
        patience: int = 3,
        dropout: float = 0.0,
        reduce: str = "max",
        smooth: int = 3,
        center: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if reduce not in ("max", "rms"):
            raise DetectorError(f"reduce must be 'max' or 'rms', got {reduce!r}")
        if lookback < 2:
            raise DetectorError(f"lookback must be >= 2, got {lookback}")
        if int(smooth) < 1:
            raise DetectorError(f"smooth must be >= 1 (an EWMA span in rows; 1 = off), got {smooth}")
        super().__init__(
            lookback=int(lookback),
            epochs=int(epochs),
            batch_size=int(batch_size),
            lr=float(lr),
            patience=int(patience),
            dropout=float(dropout),
            reduce=reduce,
            smooth=int(smooth),
            center=None if center is None else bool(center),
            **kwargs,
        )
        self._model: Any = None
        self._model_dir: Path | None = None  # a saved Keras model not loaded yet (served through ONNX)
        self._onnx: OnnxModel | None = None
        self.sigma_: np.ndarray | None = None
        self.center_ = False
        self._compiled: Any = None
        self._score_cache: dict[bytes, float] = {}  # window bytes -> raw score (see _cached_window_scores)

    @property
    def model_(self) -> Any:
        """The Keras model (loaded from disk on first use when the detector is served through ONNX)."""
        if self._model is None and self._model_dir is not None:
            self._model = self._read_keras(self._model_dir)
        return self._model

    @model_.setter
    def model_(self, model: Any) -> None:
        self._model, self._model_dir, self._onnx, self._compiled = model, None, None, None
        self._score_cache = {}

    @property
    def served_by(self) -> str:
        """``"onnx"`` or ``"keras"``: what scores go through."""
        return "onnx" if self._onnx is not None else "keras"

    # ---------------------------------------------------------------- hooks
    @property
    @abstractmethod
    def window_length(self) -> int:
        """Rows per window (the window ends at the scored row)."""

    @abstractmethod
    def _build(self, n_features: int) -> Any:
        """A compiled Keras model for this detector."""

    @abstractmethod
    def _split(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(model input, training target) from windows (m, window_length, n_features)."""

    @abstractmethod
    def _last_step_error(self, windows: np.ndarray, output: np.ndarray) -> np.ndarray:
        """Error (m, n_features) of the model output at the window's last row."""

    def _reference(self, windows: np.ndarray) -> np.ndarray:
        """The level each window is taken relative to when centring (m, 1, f): its mean here."""
        return windows.mean(axis=1, keepdims=True)

    def _prepare(self, windows: np.ndarray) -> np.ndarray:
        """Windows relative to their own level (``center``), so a level shift is not an error forever.

        Raw series (``columns`` mode: server metrics, counts, prices) drift and change level;
        a network that learnt absolute levels on the first rows then errs on every later row.
        Centred, it learns shapes, and a jump is an error only where it happens. Candle
        features are already relative (returns, relative volume), so ``center=None`` centres
        in ``columns`` mode only.
        """
        return windows - self._reference(windows) if self.center_ else windows

    @property
    def smooth_weights(self) -> np.ndarray:
        """Weights (oldest first, summing to 1) of the error smoothing; ``[1.0]`` when off."""
        return smoothing_weights(int(self.params.get("smooth", 1)))

    @property
    def model_warmup(self) -> int:
        return self.window_length - 1 + len(self.smooth_weights) - 1

    # -------------------------------------------------------------- windows
    def _valid_windows(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Windows without NaN, shape (m, L, f), and the row index each ends at."""
        w = sliding_windows(x, self.window_length)
        ok = np.isfinite(w).all(axis=(1, 2))
        return w[ok], np.flatnonzero(ok) + self.window_length - 1

    def _call(self, inputs: np.ndarray) -> np.ndarray:
        """One forward pass over a whole batch (no ``predict`` per window): ONNX Runtime or ``tf.function``."""
        if self._onnx is not None:
            outs = [self._onnx(inputs[i : i + _CHUNK]) for i in range(0, len(inputs), _CHUNK)]
            return np.concatenate(outs) if outs else np.empty((0,))
        import tensorflow as tf

        if self._compiled is None:
            model = self.model_

            @tf.function(reduce_retracing=True)
            def forward(batch: Any) -> Any:
                return model(batch, training=False)

            self._compiled = forward
        outs = [
            self._compiled(tf.constant(inputs[i : i + _CHUNK], dtype=tf.float32)).numpy()
            for i in range(0, len(inputs), _CHUNK)
        ]
        return np.concatenate(outs) if outs else np.empty((0,))

    def _window_scores(self, windows: np.ndarray) -> np.ndarray:
        if len(windows) == 0:
            return np.empty(0)
        windows = self._prepare(windows)
        inputs, _ = self._split(windows)
        err = self._last_step_error(windows, self._call(inputs.astype("float32")))
        assert self.sigma_ is not None
        z = err / self.sigma_
        if self.params["reduce"] == "rms":
            return np.sqrt(np.mean(z**2, axis=1))
        return np.max(np.abs(z), axis=1)

    # ------------------------------------------------------------- training
    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        import keras

        keras.utils.set_random_seed(self.params["random_state"])
        center = self.params.get("center")
        self.center_ = (self.spec_ is not None and self.spec_.mode == "columns") if center is None else bool(center)
        tw = [self._prepare(self._valid_windows(x)[0]) for x in train]
        cw = [self._prepare(self._valid_windows(x)[0]) for x in calibration]
        train_w = np.concatenate(tw) if tw else np.empty((0,))
        cal_w = np.concatenate(cw) if cw else np.empty((0,))
        if len(train_w) < 2:
            raise DetectorError(
                f"{self.name}: too little training data: {len(train_w)} complete windows of "
                f"{self.window_length} rows (need more rows than the warm-up of {self.warmup})"
            )
        n_features = train_w.shape[2]
        self.model_ = self._build(n_features)
        x, y = self._split(train_w.astype("float32"))
        callbacks = list(self._fit_kwargs.get("callbacks") or [])
        validation = None
        if len(cal_w) >= 2 and cal_w is not train_w:
            validation = self._split(cal_w.astype("float32"))
            callbacks.append(
                keras.callbacks.EarlyStopping(
                    monitor="val_loss", patience=self.params["patience"], restore_best_weights=True
                )
            )
        self.model_.fit(
            x,
            y,
            epochs=self.params["epochs"],
            batch_size=self.params["batch_size"],
            shuffle=True,
            validation_data=validation,
            callbacks=callbacks,
            verbose=0,
        )
        ref = cal_w if len(cal_w) >= 2 else train_w
        inputs, _ = self._split(ref.astype("float32"))
        err = self._last_step_error(ref, self._call(inputs))
        sigma = np.sqrt(np.mean(err**2, axis=0))
        self.sigma_ = np.where(sigma > 1e-8, sigma, 1e-8)

    # -------------------------------------------------------------- scoring
    def _smooth(self, raw: np.ndarray) -> np.ndarray:
        """Weighted mean of the last ``len(weights)`` raw scores along axis -1 (NaN if any is NaN)."""
        weights = self.smooth_weights
        if len(weights) == 1:
            return raw
        out = np.full(raw.shape, np.nan)
        if raw.shape[-1] >= len(weights):
            out[..., len(weights) - 1 :] = (
                np.lib.stride_tricks.sliding_window_view(raw, len(weights), axis=-1) @ weights
            )
        return out

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        out = np.full(len(x), np.nan)
        windows, ends = self._valid_windows(x)
        out[ends] = self._window_scores(windows)
        return self._smooth(out)

    def _score_last(self, xs: list[np.ndarray], last_n: int) -> list[np.ndarray]:
        """The last ``last_n`` windows of every series, through the model in one call."""
        L = self.window_length
        n_raw = last_n + len(self.smooth_weights) - 1  # raw scores the smoothing needs
        series = np.stack(xs)  # (symbols, rows, features); base.score_batch passes equal-length tails
        views = np.lib.stride_tricks.sliding_window_view(series, L, axis=1)[:, -n_raw:]  # (s, n_raw, f, L)
        stacked = np.ascontiguousarray(np.swapaxes(views, 2, 3)).reshape(-1, L, series.shape[2])
        scores = np.full(len(stacked), np.nan)
        ok = np.isfinite(stacked).all(axis=(1, 2))
        scores[ok] = self._cached_window_scores(stacked[ok])
        return list(self._smooth(scores.reshape(len(xs), n_raw))[:, -last_n:])

    def _cached_window_scores(self, windows: np.ndarray) -> np.ndarray:
        """``_window_scores``, reusing the raw scores of windows seen by the previous calls.

        Why: the smoothing needs the last ``len(smooth_weights)`` raw scores (8 for span 3),
        so each live cycle would send 8 windows per symbol through the model while only the
        newest one is new. A raw score is a function of the window alone (same weights), so
        a window with the very same bytes gets the very same score: the cache is keyed by the
        window's bytes and results are exactly what the model gives. It keeps what the last
        two calls used, and is emptied whenever the model changes.
        """
        keys = [w.tobytes() for w in windows]
        cache = self._score_cache
        known = np.fromiter((k in cache for k in keys), dtype=bool, count=len(keys))
        out = np.empty(len(windows))
        if known.any():
            out[known] = [cache[k] for k, hit in zip(keys, known, strict=True) if hit]
        if not known.all():
            fresh = self._window_scores(windows[~known])
            out[~known] = fresh
            cache.update(zip((k for k, hit in zip(keys, known, strict=True) if not hit), fresh.tolist(), strict=True))
        if len(cache) > 4 * max(len(keys), 1024):  # bounded: drop the oldest entries (dicts keep insertion order)
            for stale in list(cache)[: len(cache) - 2 * max(len(keys), 1024)]:
                cache.pop(stale, None)
        return out

    # -------------------------------------------------------------- storage
    def _extra_state(self) -> dict[str, Any]:
        return {"sigma": self.sigma_.tolist() if self.sigma_ is not None else None, "center": self.center_}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        sigma = state.get("sigma")
        self.sigma_ = np.asarray(sigma, dtype="float64") if sigma is not None else None
        self.center_ = bool(state.get("center", False))  # models saved before centring existed: off

    def _save_model(self, directory: Path) -> None:
        """``model.keras`` (the source of truth) and, when the export reproduces it, ``model.onnx``.

        From then on this detector scores through the export too, as a restarted process would.
        """
        model = self.model_
        model.save(directory / MODEL_FILE)
        exported = export_onnx(model, directory)
        if exported is not None and onnx_enabled():
            self._onnx = OnnxModel(exported)
            self._score_cache = {}  # scores from now on are ONNX Runtime's

    def _load_model(self, directory: Path) -> None:
        path = directory / MODEL_FILE
        if not path.is_file():
            raise DetectorError(f"{self.name}: model file {path} not found")
        self._model, self._model_dir, self._compiled = None, None, None
        self._score_cache = {}
        self._onnx = load_onnx(directory)
        if self._onnx is None:
            self._model = self._read_keras(directory)
        else:
            self._model_dir = directory  # Keras only if asked for (keeps TensorFlow out of a serving process)

    @staticmethod
    def _read_keras(directory: Path) -> Any:
        import keras

        path = directory / MODEL_FILE
        try:
            return keras.models.load_model(path, safe_mode=True)
        except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile) as err:
            raise DetectorError(f"{path}: cannot load the Keras model ({err})") from None
