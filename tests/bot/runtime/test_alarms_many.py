"""Alarms for hundreds of symbols at once are exactly the per-symbol alarms of the one rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bot.runtime.detector_pool import DetectorPool
from core.config import default_config
from detectors.registry import create_detector
from storage.db import open_database
from storage.thresholds import set_detector_enabled, set_threshold
from tests.conftest import _make_candles


@pytest.mark.parametrize(
    "threshold",
    [
        {"policy": "static", "value": 5.0},
        {"policy": "k_sigma", "k": 4.0},
        {"policy": "rolling_quantile", "quantile": 0.99},
    ],
)
def test_alarms_many_equals_the_rule_symbol_by_symbol(tmp_path: Path, threshold: dict) -> None:
    cfg = default_config(database={"url": f"sqlite:///{tmp_path / 'v.db'}"}, detectors={"zscore": {}})
    _engine, factory = open_database(cfg.database.url)
    detector = create_detector("zscore", threshold=threshold).fit(_make_candles(300, seed=1))
    with factory.begin() as s:  # overrides below and above the detector's own threshold, and a switch-off
        set_threshold(s, "S007/USDT", "zscore", 1.5)
        set_threshold(s, "S011/USDT", "", 50.0)
        set_detector_enabled(s, "S013/USDT", "zscore", False)
    pool = DetectorPool(cfg, factory, tmp_path / "models")
    pool._refresh_overrides()
    rng = np.random.default_rng(3)
    index = pd.date_range("2024-02-01", periods=3, freq="h", tz="UTC")
    batch = {}
    for i in range(60):
        values = rng.gamma(1.0, 1.0, 3) * (8 if i % 5 == 0 else 1)
        if i == 21:
            values[1] = np.nan
        if i == 7:  # under the detector's threshold, over the symbol's own override (1.5)
            values = np.array([2.0, 0.2, 0.1])
        batch[f"binance:S{i:03d}/USDT"] = pd.Series(values, index=index, name="score")
    expected = {}
    for key, scores in batch.items():
        fired = pool.alarms_for("zscore", key.split(":")[1], detector, scores)
        if len(fired):
            expected[key] = fired
    got = pool.alarms_many("zscore", detector, batch)
    assert got.keys() == expected.keys() and len(expected) > 3
    for key in expected:
        pd.testing.assert_frame_equal(got[key], expected[key])
    assert "binance:S007/USDT" in got and "binance:S013/USDT" not in got
