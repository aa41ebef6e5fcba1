from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bot.errors import DetectorError
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
