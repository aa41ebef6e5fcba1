from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ConfigError, DetectorError
from detectors.base import Detector
from detectors.registry import create_detector, load_detector

TINY = {"epochs": 2, "lookback": 8, "batch_size": 32}
TINY_BY_NAME = {
    "lstm_forecaster": {**TINY, "units": 8},
    "lstm_autoencoder": {**TINY, "latent": 8},
    "gru_autoencoder": {**TINY, "latent": 8},
    "attention_autoencoder": {**TINY, "latent": 8},
    "cnn_autoencoder": {**TINY, "latent": 8, "filters": 8},
    "zscore": {"window": 24},
}

NAMES = [pytest.param(n, marks=pytest.mark.slow) if n != "zscore" else n for n in TINY_BY_NAME]


class _Fitted(dict):
    """Detectors fitted on first use (so `-m "not slow"` does not train the neural ones)."""

    def __init__(self, make_candles) -> None:
        super().__init__()
        self.train = {"A": make_candles(300, seed=1), "B": make_candles(300, seed=2)}

    def __missing__(self, name: str) -> Detector:
        self[name] = create_detector(name, **TINY_BY_NAME[name]).fit(self.train)
        return self[name]


@pytest.fixture(scope="module")
def fitted(make_candles) -> dict[str, Detector]:
    return _Fitted(make_candles)


@pytest.mark.parametrize("name", NAMES)
def test_detector_score_is_causal(fitted: dict[str, Detector], name: str, make_candles) -> None:
    det = fitted[name]
    frame = make_candles(260, seed=3, spike_at=240)
    short = det.score(frame.iloc[:200])
    full = det.score(frame)
    np.testing.assert_allclose(full.iloc[:200].to_numpy(), short.to_numpy(), rtol=1e-5, equal_nan=True)
    assert full.index.equals(frame.index)
    assert full.iloc[: det.warmup].isna().all()
    assert full.iloc[det.warmup :].notna().all()


@pytest.mark.parametrize("name", NAMES)
def test_detector_save_load_gives_identical_scores(
    fitted: dict[str, Detector], name: str, tmp_path, make_candles
) -> None:
    det = fitted[name]
    frame = make_candles(150, seed=4)
    path = det.save(tmp_path / name)
    assert not list(path.glob("*.pkl")) and not list(path.glob("*.pickle"))
    again = load_detector(path)
    assert type(again) is type(det)
    np.testing.assert_array_equal(again.score(frame).to_numpy(), det.score(frame).to_numpy())
    assert again.threshold_.to_dict() == det.threshold_.to_dict()


@pytest.mark.parametrize("name", NAMES)
def test_detector_score_batch_matches_score(fitted: dict[str, Detector], name: str, make_candles) -> None:
    det = fitted[name]
    frames = {"X": make_candles(120, seed=5), "Y": make_candles(140, seed=6, spike_at=138)}
    batch = det.score_batch(frames, last_n=3)
    for sym, frame in frames.items():
        np.testing.assert_allclose(batch[sym].to_numpy(), det.score(frame).to_numpy()[-3:], rtol=1e-4)
        assert batch[sym].index.equals(frame.index[-3:])


@pytest.mark.slow
def test_detector_errors_name_the_problem(fitted: dict[str, Detector], make_candles) -> None:
    det = fitted["lstm_forecaster"]
    frame = make_candles(100, seed=7)
    with pytest.raises(DetectorError, match="needs at least"):
        det.score(frame.iloc[:5])
    holed = frame.copy()
    holed.iloc[50, holed.columns.get_loc("close")] = np.nan
    with pytest.raises(DetectorError, match="'close'.*2024-01-03 02:00"):
        det.score(holed)
    with pytest.raises(DetectorError, match="missing column.*volume"):
        det.score(frame.drop(columns=["volume"]))


def test_unfitted_neural_detector_refuses_to_score(candles: pd.DataFrame) -> None:
    with pytest.raises(DetectorError, match="not fitted"):
        create_detector("lstm_autoencoder").score(candles)


def test_zscore_scores_without_training(candles: pd.DataFrame, make_candles) -> None:
    spiky = make_candles(200, seed=8, spike_at=150)
    scores = create_detector("zscore").score(spiky)
    assert scores.idxmax() == spiky.index[150]
    assert create_detector("zscore").is_anomaly(scores).iloc[150]


@pytest.mark.slow
def test_detector_univariate_value_column() -> None:
    idx = pd.date_range("2024-01-01", periods=300, freq="h", tz="UTC")
    rng = np.random.default_rng(0)
    value = np.sin(np.arange(300) / 8) + rng.normal(0, 0.05, 300)
    value[250] += 4
    frame = pd.DataFrame({"value": value}, index=idx)
    det = create_detector("lstm_forecaster", **TINY_BY_NAME["lstm_forecaster"]).fit(frame.iloc[:150])
    assert det.input_columns == ("value",)
    scores = det.score(frame)
    # centred on the last input row (raw series), a spike errs going up and again coming down
    assert scores.idxmax() in (idx[250], idx[251])


def test_create_detector_rejects_bad_cell() -> None:
    with pytest.raises(ConfigError, match="cell"):
        create_detector("lstm_autoencoder", cell="rnn")
