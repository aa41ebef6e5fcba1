"""Optional extra inputs of the candle detectors (on-chain metrics, order-book features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DetectorError
from detectors.features import FeatureSpec
from detectors.registry import create_detector, load_detector
from feeds.onchain import metric_per_bar
from feeds.synthetic import generate_market
from feeds.synthetic_onchain import generate_onchain

INPUT = "onchain_exchange_netflow"


def _with_input(frame: pd.DataFrame, seed: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.date_range(frame.index[0].floor("D"), frame.index[-1].floor("D"), freq="D")
    daily = pd.Series(rng.normal(0, 100, len(days)), index=days)
    if spike_at is not None:
        daily.iloc[spike_at] = 5_000.0
    return frame.assign(**{INPUT: metric_per_bar(daily, frame.index, period_ms=86_400_000).to_numpy()})


def test_an_extra_input_adds_one_feature_and_its_spike_is_seen(make_candles) -> None:
    train = {f"S{i}": _with_input(make_candles(800, seed=i), seed=i) for i in range(3)}
    det = create_detector("zscore", inputs=[INPUT], input_window=96).fit(train)
    assert det.spec_ is not None and det.spec_.extras == (INPUT,) and det.spec_.names[-1] == INPUT
    test = _with_input(make_candles(800, seed=9), seed=9, spike_at=25)
    scores = det.score(test)
    alarms = det.is_anomaly(scores)
    day_known = pd.Timestamp(test.index[0].floor("D")) + pd.Timedelta(days=26)  # day 25 closes at day 26 00:00
    assert alarms.loc[day_known : day_known + pd.Timedelta(hours=23)].any()
    assert not alarms.loc[day_known - pd.Timedelta(hours=24) : day_known - pd.Timedelta(hours=1)].any()


def test_a_missing_or_unknown_extra_input_never_stops_scoring(make_candles) -> None:
    train = {"S": _with_input(make_candles(600, seed=1))}
    det = create_detector("zscore", inputs=[INPUT], input_window=96).fit(train)
    plain = make_candles(600, seed=2)  # the source was never reachable: no column at all
    holes = _with_input(make_candles(600, seed=3))
    holes.loc[holes.index[300:400], INPUT] = np.nan  # the source was down for a while
    for frame in (plain, holes):
        scores = det.score(frame)
        assert scores.iloc[det.warmup :].notna().all()
        batch = det.score_batch({"x": frame}, last_n=5)["x"]
        np.testing.assert_allclose(batch.to_numpy(), scores.iloc[-5:].to_numpy(), rtol=1e-9)


def test_extra_inputs_are_causal_and_saved_with_the_model(tmp_path: Path, make_candles) -> None:
    frame = _with_input(make_candles(700, seed=4), spike_at=20)
    det = create_detector("zscore", inputs=[INPUT], input_window=96).fit({"S": frame.iloc[:400]})
    full = det.score(frame)
    pd.testing.assert_series_equal(full.iloc[:500], det.score(frame.iloc[:500]))
    det.save(tmp_path / "m")
    back = load_detector(tmp_path / "m")
    assert back.spec_ == det.spec_
    pd.testing.assert_series_equal(back.score(frame), full)


def test_models_without_extra_inputs_keep_their_saved_shape() -> None:
    spec = FeatureSpec("candles", ("open", "high", "low", "close", "volume"), False, 48, 3600.0)
    assert "extras" not in spec.to_dict() and FeatureSpec.from_dict(spec.to_dict()) == spec
    assert "inputs" not in create_detector("zscore").params


def test_extra_inputs_need_candles() -> None:
    frame = pd.DataFrame({"value": np.arange(300.0)}, index=pd.date_range("2024", periods=300, freq="h", tz="UTC"))
    with pytest.raises(DetectorError, match="optional inputs .* need candle input"):
        create_detector("zscore", inputs=[INPUT]).fit({"x": frame})


def test_synthetic_onchain_leads_reach_bars_only_after_their_day() -> None:
    market = generate_market(6, days=60, timeframe="1h", seed=3, faults=False)
    chain = generate_onchain(market, seed=3)
    assert len(chain.labels) > 0
    for row in chain.labels.itertuples():
        assert row.end + pd.Timedelta(days=1) <= row.leads  # the move is over (and known) before the event
        frame = market.candles[f"{row.asset}/USDT"]
        daily = chain.values[row.asset][row.metric]
        aligned = metric_per_bar(daily, frame.index, period_ms=86_400_000)
        known = row.end + pd.Timedelta(days=1)
        assert aligned.loc[known] == daily.loc[row.end]
        assert (aligned.loc[: known - pd.Timedelta(hours=1)] != daily.loc[row.end]).all()
