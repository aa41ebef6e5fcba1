"""windowed_gaussian and relative_entropy: causal, find an obvious anomaly, batch = score, save/load."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.registry import create_detector, load_detector


def _series(n: int = 600, seed: int = 0, spike_at: int | None = None, shift_at: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    value = 10 + np.sin(2 * np.pi * t / 48) + rng.normal(scale=0.2, size=n)
    if spike_at is not None:
        value[spike_at] += 8
    if shift_at is not None:
        value[shift_at:] += 5
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"value": value}, index=index)


PARAMS = {"windowed_gaussian": {"window": 200, "min_periods": 24}, "relative_entropy": {"W": 24}}


@pytest.mark.parametrize("name", list(PARAMS))
def test_appending_rows_never_changes_earlier_scores(name: str) -> None:
    frame = _series(shift_at=450, spike_at=500)
    det = create_detector(name, **PARAMS[name]).fit(frame.iloc[:150])
    short, full = det.score(frame.iloc[:400]), det.score(frame)
    np.testing.assert_array_equal(full.to_numpy()[:400], short.to_numpy())
    assert full.iloc[: det.warmup].isna().all() and full.iloc[det.warmup :].notna().all()


@pytest.mark.parametrize("name", list(PARAMS))
def test_obvious_anomaly_scores_above_the_default_threshold(name: str) -> None:
    frame = _series(spike_at=400, shift_at=500)
    det = create_detector(name, **PARAMS[name]).fit(frame.iloc[:150])
    alarms = det.is_anomaly(det.score(frame))
    assert alarms.iloc[400:430].any() or alarms.iloc[500:530].any()
    quiet = alarms.iloc[150:390].to_numpy()
    # relative entropy still meets a few unseen noise histograms after 150 training rows
    assert quiet.sum() <= (3 if name == "windowed_gaussian" else 10)


@pytest.mark.parametrize("name", list(PARAMS))
def test_batch_scoring_matches_score_on_long_enough_frames(name: str) -> None:
    det = create_detector(name, **PARAMS[name]).fit(_series(seed=1).iloc[:150])
    frames = {"A": _series(seed=2), "B": _series(seed=3, spike_at=598)}
    batch = det.score_batch(frames, last_n=3)
    if name == "windowed_gaussian":  # finite memory: the batch sees all of it
        for sym, frame in frames.items():
            np.testing.assert_allclose(batch[sym].to_numpy(), det.score(frame).to_numpy()[-3:])
    else:  # the hypotheses grow with the series: the batch path sees the last batch_context rows
        for sym, frame in frames.items():
            tail = frame.iloc[-(det.batch_context + 3) :]
            np.testing.assert_allclose(batch[sym].to_numpy(), det.score(tail).to_numpy()[-3:])


@pytest.mark.parametrize("name", list(PARAMS))
def test_save_load_gives_identical_scores(name: str, tmp_path) -> None:
    frame = _series(spike_at=400)
    det = create_detector(name, **PARAMS[name]).fit(frame.iloc[:150])
    again = load_detector(det.save(tmp_path / name))
    np.testing.assert_array_equal(again.score(frame).to_numpy(), det.score(frame).to_numpy())


def test_windowed_gaussian_score_is_the_distance_in_standard_deviations() -> None:
    values = np.r_[np.tile([1.0, -1.0], 30), 4.0]  # mean 0, std 1 over the previous rows
    frame = pd.DataFrame({"value": values}, index=pd.date_range("2024-01-01", periods=61, freq="h", tz="UTC"))
    det = create_detector("windowed_gaussian", window=60, min_periods=10).fit(frame)
    assert det.score(frame).iloc[-1] == pytest.approx(4.0)


def test_relative_entropy_flags_a_never_seen_histogram_once_learnt() -> None:
    frame = _series(n=800, shift_at=600)
    det = create_detector("relative_entropy", W=24).fit(frame.iloc[:300])
    scores = det.score(frame).to_numpy()
    assert scores[600:640].max() == 1.0
    # once the new level's histogram is a hypothesis, the same level is normal again
    assert scores[700:800].sum() < 10
