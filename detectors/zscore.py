"""Robust rolling z-score: no training, the baseline every neural detector must beat.

For each feature the score is ``|x_t - median| / (1.4826 * MAD)`` over the previous
``window`` rows (the current row is left out so a spike cannot hide itself), and the
row's score is the largest over features. Vectorised with a sliding-window view.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from core.errors import ConfigError
from detectors.base import SeriesDetector
from detectors.features import sliding_windows

__all__ = ["ZScoreDetector"]


class ZScoreDetector(SeriesDetector):
    """Parameters: ``window`` (rows of history, default 48), ``min_scale`` (floor on the MAD scale)."""

    name: ClassVar[str] = "zscore"
    requires_training: ClassVar[bool] = False
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "static", "value": 12.0, "suppress": 48}
    default_threshold_columns: ClassVar[dict[str, Any] | None] = {"policy": "likelihood", "suppress": 48}

    def __init__(self, *, window: int = 48, min_scale: float = 0.05, **kwargs: Any) -> None:
        if int(window) < 2 or not float(min_scale) > 0:  # a 0/1-row window or a zero floor scores nothing but NaN
            raise ConfigError(f"zscore: window must be >= 2 rows and min_scale > 0, got {window!r} and {min_scale!r}")
        super().__init__(window=int(window), min_scale=float(min_scale), **kwargs)

    @property
    def model_warmup(self) -> int:
        return int(self.params["window"])

    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        """Nothing to learn: the scaling and threshold are fitted by the base."""

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        w = int(self.params["window"])
        out = np.full(len(x), np.nan)
        if len(x) <= w:
            return out
        hist = sliding_windows(x, w)[:-1]  # (n - w, w, f): the w rows before each scored row
        cur = x[w:]
        med = np.median(hist, axis=1)
        mad = 1.4826 * np.median(np.abs(hist - med[:, None, :]), axis=1)
        floor = self.params["min_scale"] if self.scaler_ is not None else 1e-9
        z = np.abs(cur - med) / np.maximum(mad, floor)
        with np.errstate(invalid="ignore"):
            out[w:] = np.max(z, axis=1)
        return out

    def _score_last(self, xs: list[np.ndarray], last_n: int) -> list[np.ndarray]:
        """All symbols at once: the tails have equal length, so stack them to (symbols, rows, features)."""
        w = int(self.params["window"])
        stacked = np.stack(xs)  # (s, n, f)
        n = stacked.shape[1]
        view = np.lib.stride_tricks.sliding_window_view(stacked, w + 1, axis=1)  # (s, n - w, f, w + 1)
        view = view[:, -last_n:]
        hist, cur = view[..., :w], view[..., w]
        med = np.median(hist, axis=-1)
        mad = 1.4826 * np.median(np.abs(hist - med[..., None]), axis=-1)
        floor = self.params["min_scale"] if self.scaler_ is not None else 1e-9
        z = np.max(np.abs(cur - med) / np.maximum(mad, floor), axis=-1)  # (s, last_n)
        if n < w + last_n:
            raise ValueError("tails shorter than window + last_n")
        return list(z)
