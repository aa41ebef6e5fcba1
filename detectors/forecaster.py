"""LSTM forecaster: predict the next row from the previous ``lookback`` rows; the error is the score.

Seed design: windows of 24 steps, two LSTM layers of 50 units, a Dense head. The score at
``t`` is the RMS over features of ``(y_t - yhat_t) / sigma`` (Merlion's forecast-based
anomaly score), where ``yhat_t`` is predicted from rows ``t-24 .. t-1``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from detectors.keras_base import KerasWindowDetector
from detectors.networks import build_lstm_forecaster

__all__ = ["LSTMForecaster"]


class LSTMForecaster(KerasWindowDetector):
    """Extra parameters: ``units`` (50), ``layers`` (2)."""

    name: ClassVar[str] = "lstm_forecaster"

    def __init__(self, *, units: int = 50, layers: int = 2, **kwargs: Any) -> None:
        super().__init__(units=int(units), layers=int(layers), **kwargs)

    @property
    def window_length(self) -> int:
        return int(self.params["lookback"]) + 1

    def _build(self, n_features: int) -> Any:
        p = self.params
        return build_lstm_forecaster(
            p["lookback"], n_features, units=p["units"], layers=p["layers"], dropout=p["dropout"], lr=p["lr"]
        )

    def _reference(self, windows: np.ndarray) -> np.ndarray:
        """The last input row: the network then forecasts the change from it."""
        return windows[:, -2:-1, :]

    def _split(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return windows[:, :-1], windows[:, -1]

    def _last_step_error(self, windows: np.ndarray, output: np.ndarray) -> np.ndarray:
        return windows[:, -1] - output
