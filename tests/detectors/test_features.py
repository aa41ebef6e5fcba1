from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import DetectorError
from detectors.features import RobustScaler, build_features, infer_spec
from detectors.registry import create_detector


def _walk(n: int = 300, jump_at: int | None = 250, jump: float = 0.06) -> pd.DataFrame:
    """A 1 %-per-bar random walk; a 6 % jump in one bar, or (jump_at=None) a steady 0.6 % drift over rows 241-250."""
    rng = np.random.default_rng(3)
    ret = rng.normal(0, 0.01, n)
    if jump_at is None:
        ret[241:251] = jump / 10
    else:
        ret[jump_at] = jump
    close = 100 * np.exp(np.cumsum(ret))
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    open_ = np.concatenate([[close[0]], close[:-1]])
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n)),
            "low": np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n)),
            "close": close,
            "volume": np.full(n, 1000.0),
        },
        index=idx,
    )


def _return_feature_at(frame: pd.DataFrame, ts: pd.Timestamp) -> float:
    """The standardised log-return feature (column 0) at ``ts``."""
    x = build_features(frame, infer_spec(frame.iloc[:100]))
    return float(x[frame.index.get_loc(ts), 0])


def test_features_big_move_in_one_bar_scores_high() -> None:
    frame = _walk()
    assert _return_feature_at(frame, frame.index[250]) > 4
    assert create_detector("zscore").score(frame).idxmax() == frame.index[250]


def test_features_move_across_a_gap_is_scaled_by_its_length() -> None:
    frame = _walk(jump_at=None)
    gapped = frame.drop(frame.index[241:250])  # 9 missing bars: the 6 % move into row 250 spans 10 bars
    assert _return_feature_at(gapped, frame.index[250]) < 3


def test_features_catch_up_after_stale_bars_is_scaled_by_their_number() -> None:
    frame = _walk(jump_at=None)
    stale = frame.copy()
    stale.iloc[241:250] = frame.iloc[240].to_numpy()  # a frozen feed repeats one candle
    assert _return_feature_at(stale, frame.index[250]) < 3


def test_features_are_causal_and_warm_up_is_nan() -> None:
    frame = _walk()
    spec = infer_spec(frame)
    full = build_features(frame, spec)
    head = build_features(frame.iloc[:120], spec)
    np.testing.assert_array_equal(full[:120], head)
    assert np.isnan(full[: spec.warmup]).all() and np.isfinite(full[spec.warmup :]).all()


def test_features_use_plain_columns_without_ohlcv() -> None:
    frame = pd.DataFrame({"temp": [1.0, 2.0], "load": [3.0, 4.0]}, index=pd.date_range("2024", periods=2, tz="UTC"))
    spec = infer_spec(frame)
    assert spec.mode == "columns" and spec.names == ("temp", "load")
    with pytest.raises(DetectorError, match="pressure"):
        infer_spec(frame, ["pressure"])


def test_robust_scaler_ignores_outliers_and_round_trips() -> None:
    x = np.concatenate([np.random.default_rng(0).normal(0, 1, (500, 2)), [[1e6, -1e6]]])
    scaler = RobustScaler.fit(x)
    assert np.all(np.abs(scaler.scale - 1) < 0.2)
    again = RobustScaler.from_dict(scaler.to_dict())
    np.testing.assert_array_equal(again.transform(x), scaler.transform(x))


def _cycling_market(days: int = 20, amplitude: float = 0.5, seed: int = 5) -> pd.DataFrame:
    """Hourly candles whose volatility and volume peak at 15:00 UTC every day (log amplitude ``amplitude``)."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=days * 24, freq="h", tz="UTC")
    cycle = amplitude * np.cos(2 * np.pi * (idx.hour.to_numpy() - 15) / 24)
    sigma = 0.01 * np.exp(cycle)
    ret = rng.normal(0, sigma)
    close = 100 * np.exp(np.cumsum(ret))
    open_ = np.concatenate([[100.0], close[:-1]])
    wick = np.abs(rng.normal(0, sigma, (2, len(idx))))
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * np.exp(wick[0]),
            "low": np.minimum(open_, close) * np.exp(-wick[1]),
            "close": close,
            "volume": 1000 * np.exp(cycle + rng.normal(0, 0.2, len(idx))),
        },
        index=idx,
    )


def _profile_spec(frame: pd.DataFrame):
    from detectors.features import fit_daily_profile, frame_times, raw_values

    spec = infer_spec(frame)
    return fit_daily_profile([raw_values(frame, spec)], [frame_times(frame)], spec)


def test_daily_harmonics_repeat_every_day() -> None:
    from detectors.features import daily_harmonics

    t = np.array([0.0, 3600.0, 86_400.0, 86_400.0 + 3600.0])
    h = daily_harmonics(t)
    assert h.shape == (4, 4)
    np.testing.assert_allclose(h[:2], h[2:], atol=1e-12)
    np.testing.assert_allclose(h[0], [1.0, 0.0, 1.0, 0.0])


def test_daily_profile_finds_the_busy_hour_of_volatility_and_volume() -> None:
    from detectors.features import daily_harmonics

    spec = _profile_spec(_cycling_market())
    assert len(spec.daily) == 2  # volatility, volume (no social column)
    hours = np.arange(24) * 3600.0
    for row in spec.daily:
        curve = daily_harmonics(hours) @ np.asarray(row)
        assert int(np.argmax(curve)) in (14, 15, 16)
        assert 0.3 < curve.max() < 0.7  # the planted log amplitude is 0.5


def test_daily_profile_needs_two_days_of_intraday_training() -> None:
    frame = _cycling_market(days=20)
    assert _profile_spec(frame.iloc[:30]).daily == ()
    daily_bars = frame.resample("1D").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    assert _profile_spec(daily_bars).daily == ()


def test_daily_profile_evens_out_quiet_and_busy_hour_returns() -> None:
    frame = _cycling_market(days=30)
    plain = build_features(frame, infer_spec(frame))[:, 0]
    fitted = build_features(frame, _profile_spec(frame))[:, 0]
    busy = (frame.index.hour >= 12) & (frame.index.hour <= 18)
    quiet = (frame.index.hour <= 6) | (frame.index.hour >= 23)

    def ratio(x: np.ndarray) -> float:
        return float(np.nanstd(x[busy]) / np.nanstd(x[quiet]))

    assert ratio(plain) > 1.6  # a two-day normaliser leaves the cycle in
    assert 0.75 < ratio(fitted) < 1.33


def test_feature_spec_round_trips_the_daily_profile() -> None:
    from detectors.features import FeatureSpec

    spec = _profile_spec(_cycling_market())
    again = FeatureSpec.from_dict(spec.to_dict())
    assert again == spec
    legacy = {k: v for k, v in spec.to_dict().items() if k != "daily"}
    assert FeatureSpec.from_dict(legacy).daily == ()


def test_features_with_daily_profile_are_causal() -> None:
    frame = _cycling_market(days=10)
    spec = _profile_spec(frame)
    full = build_features(frame, spec)
    np.testing.assert_array_equal(full[:150], build_features(frame.iloc[:150], spec))
    np.testing.assert_allclose(full[-60:], build_features(frame.iloc[-(spec.warmup + 60) :], spec)[-60:], rtol=1e-9)
