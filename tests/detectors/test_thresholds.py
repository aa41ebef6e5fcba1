from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.config import ThresholdConfig
from core.errors import DetectorError
from detectors.thresholds import make_threshold, threshold_from_dict

RNG = np.random.default_rng(0)
TRAIN = pd.Series(np.abs(RNG.normal(0, 1, 600)))
IDX = pd.date_range("2024-01-01", periods=400, freq="h", tz="UTC")


def _test_scores() -> pd.Series:
    values = np.abs(np.random.default_rng(1).normal(0, 1, 400))
    values[300:303] = [9.0, 12.0, 10.0]
    return pd.Series(values, index=IDX)


@pytest.mark.parametrize(
    "cfg",
    [
        {"policy": "static", "value": 5.0},
        {"policy": "k_sigma", "k": 5.0},
        {"policy": "rolling_quantile", "quantile": 0.999, "window": 100},
        {"policy": "dynamic", "window": 200},
    ],
)
def test_threshold_flags_the_burst_and_round_trips(cfg: dict) -> None:
    policy = make_threshold(ThresholdConfig.model_validate(cfg)).fit(TRAIN)
    scores = _test_scores()
    alarms = policy.is_anomaly(scores)
    assert alarms.iloc[300:303].any()
    assert alarms.sum() <= 15
    again = threshold_from_dict(policy.to_dict())
    pd.testing.assert_series_equal(again.thresholds(scores), policy.thresholds(scores))


@pytest.mark.parametrize("policy", ["k_sigma", "rolling_quantile", "dynamic"])
def test_threshold_is_causal(policy: str) -> None:
    window = {} if policy == "k_sigma" else {"window": 100}  # k_sigma reads no window (naming one is an error)
    fitted = make_threshold({"policy": policy, **window}).fit(TRAIN)
    scores = _test_scores()
    full = fitted.thresholds(scores)
    head = fitted.thresholds(scores.iloc[:250])
    np.testing.assert_allclose(full.iloc[:250].to_numpy(), head.to_numpy())


def test_unfitted_threshold_raises() -> None:
    with pytest.raises(DetectorError, match="not fitted"):
        make_threshold({"policy": "k_sigma"}).thresholds(_test_scores())


def test_dynamic_threshold_prunes_weak_sequences() -> None:
    # a flat error series with one mild bump: pruning (p=0.13) keeps it quiet unless it stands out
    values = np.full(400, 1.0) + np.random.default_rng(2).normal(0, 0.01, 400)
    values[350] = 1.05
    scores = pd.Series(values, index=IDX)
    policy = make_threshold({"policy": "dynamic", "window": 200}).fit(pd.Series(values[:200]))
    assert not policy.is_anomaly(scores).iloc[340:].any()
