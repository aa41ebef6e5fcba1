"""Neural detectors on raw series (columns mode): centred windows, the likelihood default, causal alarms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.registry import create_detector

TINY = {"epochs": 3, "lookback": 8, "batch_size": 32, "units": 8}


def _shifted(n: int = 500) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    value = np.sin(np.arange(n) / 8) + rng.normal(0, 0.05, n)
    value[300:] += 6.0  # the series moves to a new level and stays there
    index = pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame({"value": value}, index=index)


def test_raw_series_get_the_likelihood_default_and_candles_keep_k_sigma(make_candles) -> None:
    raw = create_detector("zscore").fit(_shifted().iloc[:200])
    assert raw.threshold_.policy == "likelihood" and raw.params["threshold"]["suppress"] == 48
    candles = create_detector("zscore").fit(make_candles(300, seed=1))
    assert candles.threshold_.policy == "static" and candles.threshold_.suppress == 48
    explicit = create_detector("zscore", threshold={"policy": "static", "value": 3.0}).fit(_shifted().iloc[:200])
    assert explicit.threshold_.policy == "static"


@pytest.mark.slow
def test_centred_forecaster_forgets_a_level_shift() -> None:
    frame = _shifted()
    centred = create_detector("lstm_forecaster", **TINY).fit(frame.iloc[:200])
    plain = create_detector("lstm_forecaster", center=False, **TINY).fit(frame.iloc[:200])
    after = slice(340, 500)  # well after the shift
    assert centred.center_ and not plain.center_
    assert np.median(centred.score(frame).to_numpy()[after]) < 3.0
    assert np.median(plain.score(frame).to_numpy()[after]) > 3 * np.median(centred.score(frame).to_numpy()[after])
    assert centred.threshold_.policy == "likelihood"


@pytest.mark.slow
def test_neural_alarms_on_raw_series_are_causal() -> None:
    frame = _shifted()
    det = create_detector("lstm_autoencoder", epochs=3, lookback=8, batch_size=32, latent=8).fit(frame.iloc[:200])
    short, full = det.score(frame.iloc[:400]), det.score(frame)
    np.testing.assert_allclose(full.to_numpy()[:400], short.to_numpy(), rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(det.is_anomaly(full).to_numpy()[:400], det.is_anomaly(short).to_numpy())
    assert det.is_anomaly(full).iloc[298:320].any()  # the shift itself is an incident
