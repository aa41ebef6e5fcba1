"""A series judged a few rows at a time gets the alarms of the whole series (every policy, suppression)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors.alarm_stream import AlarmStream
from detectors.alarms import Incident, detector_alarms, suppress_from, suppress_repeats
from detectors.thresholds import ThresholdPolicy, make_threshold


class PolicyDetector:
    """The part of a detector the alarm rule reads, around one threshold policy."""

    probability_output = False

    def __init__(self, policy: ThresholdPolicy) -> None:
        self.threshold_ = policy

    def alarm_values(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.transform(scores)

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.thresholds(scores)

    def last_thresholds(self, scores: pd.Series, n: int) -> pd.Series:
        return self.threshold_.thresholds_last(scores, n)

    @property
    def suppress_rows(self) -> int:
        return self.threshold_.suppress

    @property
    def alarm_lookback(self) -> int:
        return self.threshold_.lookback


def _scores(n: int = 900, seed: int = 3) -> pd.Series:
    rng = np.random.default_rng(seed)
    values = np.abs(rng.normal(size=n))
    for start in rng.choice(np.arange(50, n - 10), 25, replace=False):
        values[start : start + rng.integers(1, 6)] += rng.uniform(3, 12)  # incidents of 1-5 rows
    values[600:] *= 3  # the noise changes: rolling policies must follow it
    values[:3] = np.nan  # a warm-up
    return pd.Series(values, index=pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"), name="score")


POLICIES: dict[str, dict[str, Any]] = {
    "static": {"policy": "static", "value": 4.0, "suppress": 12},
    "k_sigma": {"policy": "k_sigma", "k": 3.0, "suppress": 30},
    "rolling_quantile": {"policy": "rolling_quantile", "quantile": 0.97, "window": 100, "suppress": 12},
    "likelihood": {"policy": "likelihood", "window": 200, "short": 5, "probability": 1e-3, "suppress": 24},
    "likelihood_robust": {"policy": "likelihood", "window": 150, "short": 3, "robust": True, "suppress": 6},
    "likelihood_record": {"policy": "likelihood", "window": 100, "short": 4, "record": 150, "suppress": 12},
    "dynamic": {"policy": "dynamic", "window": 120, "suppress": 12},
}


def _detector(cfg: dict[str, Any]) -> PolicyDetector:
    policy = make_threshold(cfg)
    if policy.policy != "static":
        policy.fit(np.abs(np.random.default_rng(9).normal(size=300)))
    return PolicyDetector(policy)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_a_series_judged_in_pieces_gets_the_alarms_of_the_whole_series(name: str) -> None:
    det = _detector(POLICIES[name])
    scores = _scores()
    whole = detector_alarms(det, scores)
    assert len(whole) >= 5
    stream = AlarmStream()
    cuts = [0, 1, 2, 40, 41, 47, 200, 203, 350, 351, 352, 600, 777, len(scores)]
    for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
        if stream.last is not None:
            assert stream.pending(scores.index[:hi]) == hi - lo
        stream.extend(det, scores.iloc[lo:hi])
    pieces = stream.alarms_since(None)
    assert pieces.index.equals(whole.index)
    np.testing.assert_allclose(pieces["score"], whole["score"], rtol=1e-12)
    np.testing.assert_allclose(pieces["threshold"], whole["threshold"], rtol=1e-9)
    assert pieces["severity"].tolist() == whole["severity"].tolist()


@pytest.mark.parametrize("name", ["likelihood", "rolling_quantile", "dynamic"])
def test_the_carried_history_is_bounded_and_enough(name: str) -> None:
    det = _detector(POLICIES[name])
    scores = _scores(1500)
    stream = AlarmStream()
    for lo in range(0, len(scores), 7):
        stream.extend(det, scores.iloc[lo : lo + 7])
        assert len(stream._scores) <= det.alarm_lookback
    whole = detector_alarms(det, scores)
    assert stream.alarms_since(scores.index[700]).index.equals(whole.index[whole.index >= scores.index[700]])


def test_a_threshold_override_replaces_the_policy_but_not_the_incident_rule() -> None:
    det = _detector(POLICIES["likelihood"])
    scores = _scores()
    stream = AlarmStream()
    for lo in range(0, len(scores), 50):
        stream.extend(det, scores.iloc[lo : lo + 50], threshold=5.0)
    values = det.alarm_values(scores)
    expected = suppress_repeats(values > 5.0, 24)
    assert stream.alarms_since(None).index.equals(scores.index[expected.to_numpy()])
    assert (stream.alarms_since(None)["threshold"] == 5.0).all()


def test_pending_counts_new_rows_and_refuses_a_series_that_moved_on() -> None:
    det = _detector(POLICIES["likelihood"])
    scores = _scores(400)
    stream = AlarmStream()
    assert stream.pending(scores.index) is None  # nothing judged yet
    stream.extend(det, scores.iloc[:300])
    assert stream.pending(scores.index) == 100
    assert stream.pending(scores.index[:300]) == 0
    assert stream.pending(scores.index[310:]) is None  # the carried rows are gone from the frame
    holed = scores.index[:300].delete(250)  # a row the carried scores hold is missing
    assert stream.pending(holed) is None


def test_alarms_can_be_asked_for_again_and_forgotten() -> None:
    det = _detector(POLICIES["static"])
    scores = _scores()
    stream = AlarmStream()
    first = stream.extend(det, scores.iloc[:500])
    since = scores.index[300]
    assert stream.alarms_since(since).index.equals(first.index[first.index >= since])
    assert stream.alarms_since(since, "high")["severity"].eq("high").all()
    stream.forget_before(since)
    assert stream.alarms_since(None).index.min() >= since


def test_suppression_carried_across_pieces_matches_one_pass() -> None:
    rng = np.random.default_rng(4)
    hit = rng.random(2000) < 0.08
    whole = suppress_repeats(pd.Series(hit), 10).to_numpy()
    state, parts = Incident(), []
    for lo in range(0, 2000, 13):
        kept, state = suppress_from(hit[lo : lo + 13], 10, state)
        parts.append(kept)
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    unsuppressed, _ = suppress_from(hit, 0)
    np.testing.assert_array_equal(unsuppressed, hit)
