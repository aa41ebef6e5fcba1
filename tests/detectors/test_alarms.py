"""The one alarm rule: which bars fire and how severe they are."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors import create_detector, detector_alarms
from detectors.alarms import alarms, fires, severity_for
from storage.models import Severity


def _series(values: list[float]) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="1h", tz="UTC"))


def test_severity_grows_with_the_margin_over_threshold() -> None:
    assert severity_for(4.1, 4.0) is Severity.LOW
    assert severity_for(6.5, 4.0) is Severity.MEDIUM
    assert severity_for(12.5, 4.0) is Severity.HIGH
    assert severity_for(11.9, 4.0) is Severity.MEDIUM  # under 3x is not high (the outbox once said 2x)


def test_probability_scores_get_severity_from_the_probability() -> None:
    assert severity_for(0.3, 0.004, probability=True) is Severity.LOW
    assert severity_for(0.6, 0.004, probability=True) is Severity.MEDIUM
    assert severity_for(0.95, 0.004, probability=True) is Severity.HIGH


def test_fires_strictly_above_and_never_on_nan() -> None:
    values = _series([np.nan, 3.9, 4.0, 4.1])
    assert fires(values, 4.0).tolist() == [False, False, False, True]
    thresholds = _series([1.0, 1.0, np.nan, 5.0])
    assert fires(values, thresholds).tolist() == [False, True, False, False]


def test_alarms_keep_only_firing_bars_with_score_threshold_and_severity() -> None:
    values = _series([1.0, 4.5, 20.0, 7.0])
    out = alarms(values, 4.0)
    assert list(out.index) == list(values.index[[1, 2, 3]])
    assert out["score"].tolist() == [4.5, 20.0, 7.0]
    assert out["threshold"].tolist() == [4.0, 4.0, 4.0]
    assert out["severity"].tolist() == ["low", "high", "medium"]


def test_alarms_below_min_severity_are_dropped() -> None:
    values = _series([0.0, 4.5, 20.0])
    assert alarms(values, 4.0, min_severity="high")["score"].tolist() == [20.0]
    assert alarms(values, 4.0, min_severity=Severity.MEDIUM)["score"].tolist() == [20.0]


def test_detector_alarms_compare_the_policy_transform_even_under_an_override() -> None:
    """Under the dynamic policy the smoothed error is compared, with or without a chat override."""
    det = create_detector("zscore", threshold={"policy": "dynamic", "window": 50})
    det.threshold_.fit(np.abs(np.random.default_rng(0).normal(size=200)))
    scores = _series([0.0] * 30 + [10.0] + [0.0] * 5)
    smoothed = det.alarm_values(scores)
    assert smoothed.iloc[30] < 10.0  # EWMA-smoothed, not the raw spike
    fired = detector_alarms(det, scores, threshold=4.0)
    assert set(fired.index) == set(scores.index[smoothed.to_numpy() > 4.0])
    assert fired["score"].tolist() == pytest.approx(smoothed[smoothed > 4.0].tolist())


def test_is_anomaly_follows_the_same_rule_as_alarms() -> None:
    det = create_detector("zscore", threshold={"policy": "static", "value": 4.0})
    scores = _series([np.nan, 4.0, 4.0001, 9.0])
    assert det.is_anomaly(scores).tolist() == [False, False, True, True]
    assert list(detector_alarms(det, scores).index) == list(scores.index[[2, 3]])
