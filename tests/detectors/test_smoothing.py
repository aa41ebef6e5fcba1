from __future__ import annotations

import numpy as np
import pytest

from core.errors import DetectorError
from detectors.keras_base import smoothing_weights
from detectors.registry import create_detector


def test_smoothing_weights_sum_to_one_and_favour_the_latest_row() -> None:
    w = smoothing_weights(3)
    assert len(w) == 8
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.diff(w) > 0)  # oldest first
    assert w[-1] == pytest.approx(0.5, rel=0.01)  # alpha = 2 / (3 + 1)


def test_smoothing_span_one_is_no_smoothing() -> None:
    np.testing.assert_array_equal(smoothing_weights(1), [1.0])


def test_smoothing_lengthens_the_warmup_by_its_window() -> None:
    raw = create_detector("lstm_forecaster", smooth=1)
    smoothed = create_detector("lstm_forecaster", smooth=3)
    assert smoothed.model_warmup - raw.model_warmup == len(smoothing_weights(3)) - 1


def test_smoothing_span_below_one_is_refused() -> None:
    with pytest.raises(DetectorError, match="smooth must be >= 1"):
        create_detector("lstm_autoencoder", smooth=0)
