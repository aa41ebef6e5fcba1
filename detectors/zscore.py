"""Robust rolling z-score: no training, the baseline every neural detector must beat.

For each feature the score is ``|x_t - median| / (1.4826 * MAD)`` over the previous
``window`` rows (the current row is left out so a spike cannot hide itself), and the
row's score is the largest over features. Vectorised with a sliding-window view.

The default ``window`` on candles is one day of bars, at least 48 and at most 288 rows:
48 hourly bars as before, 288 five-minute bars. Four hours of 5-minute bars (48 rows) made
a median and MAD that a calm spell shrinks until ordinary bars score 12 or more: on the
tuning part of the real 5-minute candles (``detectors/candle_split.py``) the alert rate fell
from 4.9 to 0.9 per symbol-week with one day, and on the synthetic tuning seeds a longer window
was no worse. The cap keeps the warm-up inside the live loop's default 500-bar history. Raw
series keep 48 rows (the NAB defaults were chosen with it, and NAB's short files need it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from core.errors import ConfigError
from detectors.base import SeriesDetector
from detectors.features import sliding_windows
from detectors.thresholds import RAW_SERIES_DEFAULT

__all__ = ["ZScoreDetector"]


DAY_S = 86_400.0
WINDOW_ROWS = 48  # raw series, and the floor on candles
MAX_CANDLE_WINDOW = 288  # one day of 5-minute bars


class ZScoreDetector(SeriesDetector):
    """Parameters: ``window`` (rows of history; default: see the module), ``min_scale`` (floor on the MAD scale)."""

    name: ClassVar[str] = "zscore"
    requires_training: ClassVar[bool] = False
    default_threshold: ClassVar[dict[str, Any]] = {"policy": "static", "value": 12.0, "suppress": 48}
    default_threshold_columns: ClassVar[dict[str, Any] | None] = RAW_SERIES_DEFAULT

    def __init__(self, *, window: int | None = None, min_scale: float = 0.05, **kwargs: Any) -> None:
        if (window is not None and int(window) < 2) or not float(min_scale) > 0:
            # a 0/1-row window or a zero floor scores nothing but NaN
            raise ConfigError(f"zscore: window must be >= 2 rows and min_scale > 0, got {window!r} and {min_scale!r}")
        super().__init__(window=None if window is None else int(window), min_scale=float(min_scale), **kwargs)

    @property
    def window(self) -> int:
        """Rows of history: the parameter, or one day of candle bars within [48, 288], or 48 on raw series."""
        if self.params["window"] is not None:
            return int(self.params["window"])
        spec = self.spec_
        if spec is not None and spec.mode == "candles" and spec.step_s > 0:
            return int(min(MAX_CANDLE_WINDOW, max(WINDOW_ROWS, round(DAY_S / spec.step_s))))
        return WINDOW_ROWS

    @property
    def model_warmup(self) -> int:
        return self.window

    def fit(
        self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None, **kwargs: Any
    ) -> Self:
        super().fit(frames, labels, **kwargs)
        self.params["window"] = self.window  # saved as chosen for the training bars
        return self

    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        """Nothing to learn: the scaling and threshold are fitted by the base."""

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        w = self.window
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
        w = self.window
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
