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
def test_batch_scoring_matches_score_whatever_the_frame_lengths(name: str) -> None:
    """The history of both grows from the frame's start: the batch scores every frame whole, never a common tail."""
    det = create_detector(name, **PARAMS[name]).fit(_series(seed=1).iloc[:150])
    frames = {"A": _series(seed=2), "B": _series(seed=3, spike_at=598), "C": _series(n=260, seed=4)}
    batch = det.score_batch(frames, last_n=3)
    for sym, frame in frames.items():
        np.testing.assert_array_equal(batch[sym].to_numpy(), det.score(frame).to_numpy()[-3:])
        assert batch[sym].index.equals(frame.index[-3:])


def _hypothesis_loop(hist: np.ndarray, W: int, limit: float, c_th: int) -> np.ndarray:
    """The row-by-row test as written first (and as NAB runs it), the reference for the vectorised one."""
    hypotheses = np.empty((0, hist.shape[1]))
    counts: list[int] = []
    scores = np.zeros(len(hist))
    with np.errstate(divide="ignore", invalid="ignore"):
        for i, p in enumerate(hist):
            if not len(hypotheses):
                hypotheses = p[None, :]
                counts.append(1)
                continue
            stat = 2 * W * np.where(p > 0, p * np.log(p / hypotheses), 0.0).sum(axis=1)
            agree = np.flatnonzero(stat < limit)
            if len(agree):
                best = int(agree[np.argmin(stat[agree])])
                counts[best] += 1
                scores[i] = 1.0 if counts[best] <= c_th else 0.0
            else:
                scores[i] = 1.0
                hypotheses = np.vstack([hypotheses, p])
                counts.append(1)
    return scores


@pytest.mark.parametrize(("c_th", "chunk", "seed"), [(1, 256, 0), (3, 7, 1), (2, 1, 2), (1, 64, 3)])
def test_vectorised_hypothesis_test_equals_the_row_by_row_one(c_th: int, chunk: int, seed: int) -> None:
    from scipy.stats import chi2

    from detectors.classical import RelativeEntropyDetector

    rng = np.random.default_rng(seed)
    W, bins = 24, 7
    values = np.concatenate([rng.normal(0, 1, 900), rng.normal(2, 0.5, 300), rng.uniform(-4, 4, 400)])
    b = np.clip(np.digitize(values, np.linspace(-3, 3, bins - 1)), 0, bins - 1)
    onehot = np.eye(bins)[b]
    counts = np.cumsum(np.vstack([np.zeros((1, bins)), onehot]), axis=0)
    hist = (counts[W:] - counts[:-W]) / W
    limit = float(chi2.isf(0.01, bins - 1))
    fast = RelativeEntropyDetector._hypothesis_test(hist, W, limit, c_th, chunk=chunk)
    np.testing.assert_array_equal(fast, _hypothesis_loop(hist, W, limit, c_th))
    assert 5 < fast.sum() < len(fast) / 2


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
