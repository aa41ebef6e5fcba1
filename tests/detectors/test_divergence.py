"""The divergence detector: finds the venue that broke away, ignores common moves, honours the contract."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DetectorError
from detectors.alarms import detector_alarms
from detectors.divergence import DivergenceDetector
from detectors.groups import attach_peers, peer_column, peer_venues
from detectors.registry import create_detector, load_detector
from feeds.synthetic_venues import generate_venue_market, replay_as_venues


@pytest.fixture(scope="module")
def market():
    return generate_venue_market(4, ("binance", "okx", "kraken"), days=40, seed=5)


def _group(market, name: str) -> dict[str, pd.DataFrame]:
    return attach_peers({m: market.candles[m] for m in market.groups[name]})


def _alarm_bars(det: DivergenceDetector, frame: pd.DataFrame) -> pd.DatetimeIndex:
    return detector_alarms(det, det.score(frame)).index


def test_divergence_is_registered_and_needs_no_training() -> None:
    det = create_detector("divergence", window=48)
    assert isinstance(det, DivergenceDetector) and not det.requires_training
    assert det.event_kind == "divergence" and det.warmup == 97


def test_attach_peers_adds_the_other_venues_aligned_on_own_bars(make_candles) -> None:
    a, b = make_candles(50, seed=1), make_candles(50, seed=2).iloc[5:]
    frames = attach_peers({"x:A/B": a, "y:A/B": b})
    assert peer_venues(frames["x:A/B"]) == ["y:A/B"]
    assert frames["x:A/B"][peer_column("close", "y:A/B")].isna().sum() == 5  # no forward fill
    assert frames["y:A/B"].index.equals(b.index)
    assert list(frames["y:A/B"].columns[:5]) == ["open", "high", "low", "close", "volume"]


def test_divergence_alarms_on_the_dislocated_venue_only(market) -> None:
    det = DivergenceDetector()
    found = 0
    for row in market.labels.itertuples():
        frames = _group(market, row.group)
        key = f"{row.venue}:{row.symbol}"
        span = (row.start, row.end + pd.Timedelta(hours=2))
        own = _alarm_bars(det, frames[key])
        found += int(((own >= span[0]) & (own <= span[1])).any())
        for peer, frame in frames.items():
            if peer != key:
                other = _alarm_bars(det, frame)
                assert not ((other >= span[0]) & (other <= span[1])).any(), (row.kind, peer)
    assert found >= 0.8 * len(market.labels)


def test_divergence_stays_quiet_on_venues_that_differ_only_by_noise(make_candles) -> None:
    frame = make_candles(1500, seed=3)
    frames = attach_peers(replay_as_venues(frame, ("a", "b", "c", "d"), seed=2, timeframe="1h"))
    det = DivergenceDetector()
    for f in frames.values():
        assert len(_alarm_bars(det, f)) == 0


def test_a_common_move_is_not_a_divergence(make_candles) -> None:
    frame = make_candles(600, seed=4)
    frame.loc[frame.index[400:], ["open", "high", "low", "close"]] *= 1.3  # +30 % on every venue at once
    frames = attach_peers(replay_as_venues(frame, ("a", "b", "c"), seed=3, timeframe="1h"))
    det = DivergenceDetector()
    assert all(len(_alarm_bars(det, f)) == 0 for f in frames.values())


def _one_venue_jump(make_candles, n: int = 500, at: int = 450, size: float = 0.05) -> dict[str, pd.DataFrame]:
    venues = replay_as_venues(make_candles(n, seed=6), ("a", "b", "c"), seed=4, timeframe="1h")
    venues["b"] = venues["b"].copy()
    venues["b"].iloc[at : at + 3, :4] *= 1 + size
    return attach_peers(venues)


def test_scores_are_causal_appending_rows_changes_nothing_before(make_candles) -> None:
    frames = _one_venue_jump(make_candles)
    det = DivergenceDetector(window=48)
    full = det.score(frames["b"])
    part = det.score(frames["b"].iloc[:460])
    pd.testing.assert_series_equal(full.iloc[:460], part)
    assert full.iloc[: det.warmup].isna().all() and full.iloc[det.warmup :].notna().all()
    assert full.iloc[450] > 10 and full.iloc[449] < 10


def test_score_batch_equals_score_for_every_frame(make_candles) -> None:
    frames = _one_venue_jump(make_candles)
    lonely = frames["a"][["open", "high", "low", "close", "volume"]]
    batch_in = {**frames, "z:ALONE": lonely}
    det = DivergenceDetector(window=48)
    batch = det.score_batch(batch_in, last_n=60)
    for key, frame in frames.items():
        np.testing.assert_allclose(batch[key].to_numpy(), det.score(frame).iloc[-60:].to_numpy(), rtol=1e-12)
    assert batch["z:ALONE"].isna().all()  # not part of a group: no score, no error


def test_missing_peer_bars_and_small_groups(make_candles) -> None:
    frames = _one_venue_jump(make_candles)
    gappy = frames["b"].copy()
    gappy.loc[gappy.index[200:205], peer_column("close", "a")] = np.nan
    scores = DivergenceDetector(window=48).score(gappy)
    assert scores.iloc[200:205].isna().all()  # two of three venues: no one can tell who broke away
    assert scores.iloc[300:].notna().all()
    pair = attach_peers({k: v for k, v in replay_as_venues(make_candles(300), ("a", "b"), timeframe="1h").items()})
    assert DivergenceDetector(window=48).score(pair["a"]).isna().all()
    assert DivergenceDetector(window=48, min_venues=2).score(pair["a"]).iloc[-10:].notna().all()


def test_adaptive_threshold_policies_fit_on_training_scores(make_candles) -> None:
    frames = _one_venue_jump(make_candles, n=700, at=650)
    det = DivergenceDetector(window=48, threshold={"policy": "k_sigma", "k": 8.0}).fit(
        {k: f.iloc[:600] for k, f in frames.items()}
    )
    assert det.threshold_.fitted_
    hits = _alarm_bars(det, frames["b"])
    assert frames["b"].index[650] in hits
    with pytest.raises(DetectorError, match="no scores to fit"):
        DivergenceDetector(threshold={"policy": "k_sigma"}).fit({"x": make_candles(50)})


def test_save_and_load_round_trip(tmp_path: Path, make_candles) -> None:
    frames = _one_venue_jump(make_candles)
    det = DivergenceDetector(window=48, threshold={"policy": "rolling_quantile", "quantile": 0.99}).fit(frames)
    det.save(tmp_path / "m")
    back = load_detector(tmp_path / "m")
    assert isinstance(back, DivergenceDetector) and back.params == det.params
    pd.testing.assert_series_equal(back.thresholds(det.score(frames["b"])), det.thresholds(det.score(frames["b"])))


def test_bad_parameters_and_inputs_are_named() -> None:
    with pytest.raises(DetectorError, match="window must be at least 8"):
        DivergenceDetector(window=3)
    with pytest.raises(DetectorError, match="min_venues must be at least 2"):
        DivergenceDetector(min_venues=1)
    frame = pd.DataFrame({"close": [1.0, 2.0]}, index=pd.date_range("2024", periods=2, freq="h", tz="UTC"))
    with pytest.raises(DetectorError, match="missing column"):
        DivergenceDetector().score(frame)
    with pytest.raises(DetectorError, match="needs at least"):
        DivergenceDetector().score_batch({"x": frame.assign(volume=1.0)})
