"""``seasonal=True`` on raw series: each column's change from the same time the day before, causal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from detectors.registry import create_detector, load_detector


def _daily(n: int, freq: str = "5min", seed: int = 0, flat: tuple[int, int] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-01", periods=n, freq=freq, tz="UTC")
    per_day = int(pd.Timedelta("1D") / pd.Timedelta(freq))
    value = 10 + 3 * np.sin(2 * np.pi * np.arange(n) / per_day) + rng.normal(scale=0.1, size=n)
    if flat is not None:
        value[flat[0] : flat[1]] = value[flat[0]]  # a stretch that stops following the daily cycle
    return pd.DataFrame({"value": value}, index=index)


def test_seasonal_adds_the_change_from_the_day_before_and_warms_up_a_day() -> None:
    det = create_detector("zscore", seasonal=True).fit(_daily(900))
    assert det.spec_.season == 288 and det.spec_.names == ("value", "value_vs_day_before")
    assert det.warmup == 288 + 48
    hourly = create_detector("zscore", seasonal=True).fit(_daily(100, "1h"))
    assert hourly.spec_.season == 24


def test_seasonal_is_off_when_training_holds_less_than_two_days() -> None:
    det = create_detector("zscore", seasonal=True).fit(_daily(500))
    assert det.spec_.season == 0 and det.spec_.names == ("value",)


def test_seasonal_scores_are_causal_batched_alike_and_saved(tmp_path: Path) -> None:
    frame = _daily(2000, flat=(1500, 1560))
    det = create_detector("zscore", seasonal=True).fit(frame.iloc[:700])
    full, head = det.score(frame), det.score(frame.iloc[:1200])
    np.testing.assert_array_equal(full.to_numpy()[:1200], head.to_numpy())
    batch = det.score_batch({"a": frame, "b": frame.iloc[300:]}, last_n=4)
    np.testing.assert_allclose(batch["a"].to_numpy(), full.to_numpy()[-4:])
    again = load_detector(det.save(tmp_path / "z"))
    assert again.spec_.season == 288
    np.testing.assert_array_equal(again.score(frame).to_numpy(), full.to_numpy())


def test_a_flat_stretch_in_a_daily_cycle_shows_in_the_seasonal_feature() -> None:
    frame = _daily(2000, flat=(1500, 1560))
    plain = create_detector("zscore", threshold={"policy": "static", "value": 8.0}).fit(frame.iloc[:700])
    seasonal = create_detector("zscore", seasonal=True, threshold={"policy": "static", "value": 8.0}).fit(
        frame.iloc[:700]
    )
    assert seasonal.score(frame).iloc[1500:1560].max() > 2 * plain.score(frame).iloc[1500:1560].max()
