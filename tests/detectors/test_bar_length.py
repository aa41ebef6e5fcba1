"""Candle defaults follow the bar length: zscore's window spans a day, fixed levels keep their alarms per hour."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.registry import create_detector, load_detector
from tests.conftest import _make_candles


def _candles(n: int, freq: str, seed: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    frame = _make_candles(n, seed=seed, spike_at=spike_at)
    frame.index = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")
    return frame


@pytest.mark.parametrize(("freq", "window"), [("1h", 48), ("15min", 96), ("5min", 288), ("1min", 288)])
def test_zscore_window_is_a_day_of_candles_within_48_and_288_rows(freq: str, window: int) -> None:
    det = create_detector("zscore").fit(_candles(900, freq))
    assert det.window == window and det.params["window"] == window  # saved as chosen
    assert det.warmup >= window


def test_zscore_keeps_48_rows_on_raw_series_and_an_explicit_window() -> None:
    raw = pd.DataFrame(
        {"value": np.arange(300.0)}, index=pd.date_range("2024-01-01", periods=300, freq="5min", tz="UTC")
    )
    assert create_detector("zscore").fit(raw).window == 48
    assert create_detector("zscore", window=100).fit(_candles(900, "5min")).window == 100


def test_fixed_default_levels_are_raised_on_bars_shorter_than_an_hour(tmp_path: Path) -> None:
    hourly = create_detector("zscore").fit(_candles(900, "1h"))
    assert hourly.threshold_.rarer == 1.0 and hourly.threshold_.shift == 0.0
    assert hourly.thresholds(hourly.score(_candles(900, "1h"))).iloc[-1] == 12.0  # the tuned level, untouched
    five = create_detector("zscore").fit(_candles(900, "5min"))
    policy = five.threshold_
    assert policy.rarer == pytest.approx(12.0) and policy.excess_ > 0
    level = five.thresholds(five.score(_candles(900, "5min"))).iloc[-1]
    assert level == pytest.approx(12.0 + policy.excess_ * np.log(12.0))
    again = load_detector(five.save(tmp_path / "z"))
    assert again.thresholds(again.score(_candles(900, "5min"))).iloc[-1] == pytest.approx(level)
    explicit = create_detector("zscore", threshold={"policy": "static", "value": 12.0}).fit(_candles(900, "5min"))
    assert explicit.threshold_.shift == 0.0  # a threshold the user set is used as set


def test_the_shift_makes_exceedances_rarer_by_the_bar_ratio_under_an_exponential_tail() -> None:
    from detectors.thresholds import make_threshold

    rng = np.random.default_rng(0)
    train = rng.exponential(2.0, 200_000)
    policy = make_threshold({"policy": "k_sigma", "k": 4.0}).fit(train)
    policy.rarer = 12.0
    policy.fit_tail(train)
    base = policy.center_ + policy.k * policy.scale_
    fresh = rng.exponential(2.0, 2_000_000)
    ratio = np.mean(fresh > base) / np.mean(fresh > policy.value)
    assert ratio == pytest.approx(12.0, rel=0.1)


def test_a_25_percent_crash_on_5_minute_bars_still_fires_at_the_raised_level() -> None:
    det = create_detector("zscore").fit(_candles(900, "5min", seed=1))
    frame = _candles(900, "5min", seed=2, spike_at=700)
    alarms = det.is_anomaly(det.score(frame))
    assert alarms.iloc[700]
    assert alarms.iloc[det.warmup : 690].sum() <= 2
