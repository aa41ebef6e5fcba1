"""ONNX Runtime serves the saved Keras detectors with the same scores, and Keras steps in without an export.

Parity is checked on real candles (``../shared/data/candles``): every built-in
neural detector is trained small, saved (which writes ``model.onnx``), loaded
once through ONNX Runtime and once through Keras (``VIGIL_ONNX=0``), and both
score the same 4 real series. Skipped when the shared data is absent.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.onnx_runtime import ONNX_FILE
from detectors.pump.detector import PumpDumpDetector
from detectors.registry import create_detector, load_detector
from storage.candle_csv import read_candle_csv
from tests.detectors.pump.pump_data import candle_frame, pump_labels

pytestmark = pytest.mark.slow

TINY = {"epochs": 1, "lookback": 8, "batch_size": 64}
KERAS_DETECTORS = {
    "lstm_forecaster": {**TINY, "units": 8},
    "lstm_autoencoder": {**TINY, "latent": 8},
    "gru_autoencoder": {**TINY, "latent": 8},
    "attention_autoencoder": {**TINY, "latent": 8},
    "cnn_autoencoder": {**TINY, "latent": 8, "filters": 8},
}
REAL = ["BTC_USDT-1h.csv", "ETH_USDT-1h.csv", "SOL_USDT-1h.csv", "XRP_USDT-1h.csv"]
ROWS = 600


@pytest.fixture(scope="module")
def real_candles(shared_data_dir: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in REAL:
        path = shared_data_dir / "candles" / name
        if not path.is_file():
            pytest.skip(f"{path} not found")
        frames[name.split("-")[0]] = read_candle_csv(path).iloc[-ROWS:]
    return frames


@pytest.fixture(scope="module")
def shared_data_dir() -> Path:
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / "candles").is_dir():
        pytest.skip(f"shared candles not found at {SHARED_DATA / 'candles'}")
    return SHARED_DATA


def _both(path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[object, object]:
    served = load_detector(path)
    with monkeypatch.context() as m:
        m.setenv("VIGIL_ONNX", "0")
        keras_side = load_detector(path)
    return served, keras_side


def _max_diff(a: dict[str, pd.Series], b: dict[str, pd.Series]) -> float:
    assert a.keys() == b.keys()
    diffs = []
    for key in a:
        assert a[key].index.equals(b[key].index)
        x, y = a[key].to_numpy(float), b[key].to_numpy(float)
        np.testing.assert_array_equal(np.isnan(x), np.isnan(y))
        ok = ~np.isnan(x)
        diffs.append(float(np.max(np.abs(x[ok] - y[ok]), initial=0.0)))
    return max(diffs)


@pytest.mark.parametrize("name", list(KERAS_DETECTORS))
def test_onnx_scores_match_keras_on_real_candles(
    name: str, real_candles: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    train = {k: f.iloc[:400] for k, f in real_candles.items()}
    path = create_detector(name, **KERAS_DETECTORS[name]).fit(train).save(tmp_path / name)
    assert (path / ONNX_FILE).is_file()
    served, keras_side = _both(path, monkeypatch)
    assert (served.served_by, keras_side.served_by) == ("onnx", "keras")
    last = served.score_batch(real_candles, last_n=150)
    assert _max_diff(last, keras_side.score_batch(real_candles, last_n=150)) <= 1e-5
    assert all(s.notna().all() for s in last.values())
    whole = real_candles["BTC_USDT"]
    assert _max_diff({"x": served.score(whole)}, {"x": keras_side.score(whole)}) <= 1e-5


def test_pump_dump_onnx_matches_keras_on_real_candles(
    real_candles: dict[str, pd.DataFrame], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    frames = {s: candle_frame(160, seed=i, pumps=(60, 120)) for i, s in enumerate(["A/BTC", "B/BTC"])}
    labels = pd.concat([pump_labels(s, f, (60, 120)) for s, f in frames.items()], ignore_index=True)
    tiny = {"lookback": 8, "epochs": 2, "batch_size": 32, "filters": 4, "lstm_units": 4}
    path = PumpDumpDetector(**tiny).fit(frames, labels).save(tmp_path / "pump")
    assert (path / ONNX_FILE).is_file()
    served, keras_side = _both(path, monkeypatch)
    assert (served.served_by, keras_side.served_by) == ("onnx", "keras")
    with_social = {k: f.assign(social_volume=np.linspace(0, 50, len(f))) for k, f in real_candles.items()}
    for batch in (real_candles, with_social):
        assert _max_diff(served.score_batch(batch, last_n=100), keras_side.score_batch(batch, last_n=100)) <= 1e-5


def test_keras_serves_when_the_export_is_missing_or_broken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.conftest import _make_candles

    train = {"A": _make_candles(300, seed=1), "B": _make_candles(300, seed=2)}
    frames = {"X": _make_candles(120, seed=5), "Y": _make_candles(120, seed=6, spike_at=118)}
    det = create_detector("cnn_autoencoder", **KERAS_DETECTORS["cnn_autoencoder"]).fit(train)
    path = det.save(tmp_path / "cnn")
    expected = load_detector(path).score_batch(frames, last_n=40)

    (path / ONNX_FILE).unlink()  # a model saved before exports existed
    missing = load_detector(path)
    assert missing.served_by == "keras"
    assert _max_diff(missing.score_batch(frames, last_n=40), expected) <= 1e-5

    (path / ONNX_FILE).write_bytes(b"not an onnx graph")  # a truncated or corrupt export
    with caplog.at_level(logging.WARNING, logger="detectors.onnx_runtime"):
        broken = load_detector(path)
    assert broken.served_by == "keras"
    assert "falling back to Keras" in caplog.text and str(path / ONNX_FILE) in caplog.text
    assert _max_diff(broken.score_batch(frames, last_n=40), expected) <= 1e-5
