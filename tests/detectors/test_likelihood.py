"""The likelihood policy and incident suppression: causal, adaptive, JSON round-trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError
from detectors.alarms import suppress_repeats
from detectors.likelihood import LikelihoodThreshold, tail_probability
from detectors.thresholds import make_threshold, threshold_from_dict


def _series(values: np.ndarray) -> pd.Series:
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=len(values), freq="5min", tz="UTC"))


def _fitted(**kw) -> LikelihoodThreshold:
    policy = make_threshold({"policy": "likelihood", "window": 300, "short": 5, **kw})
    rng = np.random.default_rng(0)
    return policy.fit(np.abs(rng.normal(size=400)))


def test_appending_rows_never_changes_earlier_thresholds_or_alarms() -> None:
    rng = np.random.default_rng(1)
    values = np.abs(rng.normal(size=1200))
    values[700:705] += 8.0
    values[900:] *= 5  # the noise grows: later rows must not reach back
    policy = _fitted(suppress=20)
    short, full = _series(values[:800]), _series(values)
    np.testing.assert_array_equal(policy.thresholds(full).to_numpy()[:800], policy.thresholds(short).to_numpy())
    np.testing.assert_array_equal(policy.is_anomaly(full).to_numpy()[:800], policy.is_anomaly(short).to_numpy())
    assert policy.is_anomaly(full).iloc[700:706].any()


def test_alarm_level_follows_the_series_noise() -> None:
    rng = np.random.default_rng(2)
    quiet = np.abs(rng.normal(scale=0.2, size=1000))
    noisy = np.abs(rng.normal(scale=3.0, size=1000))
    policy = _fitted()
    thr = policy.thresholds(_series(np.concatenate([quiet, noisy]))).to_numpy()
    assert thr[900] < thr[1950] / 5  # the bar rose with the noise
    # a jump that would be huge on the quiet part is nothing special on the noisy one
    spiky = np.concatenate([quiet, noisy])
    spiky[1900:1905] = 3.0
    assert not policy.is_anomaly(_series(spiky)).iloc[1900:1905].any()
    spiky[900:905] = 3.0
    assert policy.is_anomaly(_series(spiky)).iloc[900:905].any()


def test_a_score_cannot_raise_its_own_bar() -> None:
    policy = _fitted()
    values = np.full(600, 0.8)
    values[500] = 1e6
    thr = policy.thresholds(_series(values)).to_numpy()
    assert thr[500] == thr[499]


def test_likelihood_policy_round_trips_through_json() -> None:
    policy = _fitted(robust=True, probability=1e-3, suppress=12)
    again = threshold_from_dict(policy.to_dict())
    values = _series(np.abs(np.random.default_rng(3).normal(size=500)))
    np.testing.assert_array_equal(again.thresholds(values).to_numpy(), policy.thresholds(values).to_numpy())
    assert again.suppress == 12 and isinstance(again, LikelihoodThreshold) and again.robust


def test_likelihood_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown key"):
        make_threshold({"policy": "likelihood", "windw": 10})
    with pytest.raises(ConfigError, match="probability"):
        make_threshold({"policy": "likelihood", "probability": 0.7})
    with pytest.raises(ConfigError, match="suppress"):
        make_threshold({"policy": "static", "value": 1.0, "suppress": -1})


def test_suppression_keeps_one_alert_per_incident() -> None:
    a = np.zeros(100, bool)
    a[[10, 11, 20, 40, 41, 80]] = True
    kept = suppress_repeats(pd.Series(a), 25).to_numpy()
    assert np.flatnonzero(kept).tolist() == [10, 11, 40, 41, 80]
    assert (suppress_repeats(pd.Series(a), 0).to_numpy() == a).all()
    # causal: the same prefix gives the same kept alarms
    assert (suppress_repeats(pd.Series(a[:50]), 25).to_numpy() == kept[:50]).all()


def test_static_policy_with_suppression() -> None:
    policy = make_threshold({"policy": "static", "value": 1.0, "suppress": 10})
    s = _series(np.array([0, 2, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], dtype=float))
    assert np.flatnonzero(policy.is_anomaly(s).to_numpy()).tolist() == [1, 13]


def test_tail_probability() -> None:
    assert tail_probability(0.0) == pytest.approx(0.5)
    assert tail_probability(1.959964) == pytest.approx(0.025, rel=1e-4)


def test_record_lets_a_repeating_pattern_pass_and_still_flags_something_bigger() -> None:
    """A daily error spike fires every day under the Gaussian tail test alone; with `record` only a bigger one."""
    values = np.full(288 * 8, 0.5)
    values[100::288] = 6.0  # the same spike every day: part of the series' pattern
    values[288 * 6 + 200] = 15.0  # something the series never did
    base = _fitted(short=3)
    with_record = _fitted(short=3, record=576)
    daily = np.flatnonzero(base.is_anomaly(_series(values)).to_numpy())
    assert len(daily) >= 5  # the likelihood alone keeps flagging the daily spike
    fired = np.flatnonzero(with_record.is_anomaly(_series(values)).to_numpy())
    new_spike = 288 * 6 + 200
    assert new_spike in fired  # never seen before: news
    assert set(fired) <= {100, new_spike}  # the daily spike only the first time, when it was news too
    assert with_record.lookback == 576 + 3  # what a live stream carries


def test_record_thresholds_are_causal_and_round_trip() -> None:
    rng = np.random.default_rng(5)
    values = np.abs(rng.normal(size=1500))
    values[[300, 700, 1100]] += [6.0, 9.0, 5.0]
    policy = _fitted(record=400, suppress=10)
    full, head = policy.thresholds(_series(values)), policy.thresholds(_series(values[:900]))
    np.testing.assert_array_equal(full.to_numpy()[:900], head.to_numpy())
    again = threshold_from_dict(policy.to_dict())
    assert again.record == 400
    np.testing.assert_array_equal(again.thresholds(_series(values)).to_numpy(), full.to_numpy())
    with pytest.raises(ConfigError, match="record"):
        make_threshold({"policy": "likelihood", "record": -1})
