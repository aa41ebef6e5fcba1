"""Issue 17, failure 6: a tampered model file is refused on load, in one line naming the file and the key.

Before: raw ``KeyError``/``TypeError``/``ValueError``, or silently loaded (``format: 999``,
``fitted: false``, a scaler of the wrong length, a zero scale that made every score NaN).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from core.errors import DetectorError
from detectors.base import METADATA_FILE, SeriesDetector
from detectors.zscore import ZScoreDetector


class _Trained(SeriesDetector):
    """The template with a (trivial) trained part, so ``fitted`` matters; no Keras, so it is fast."""

    name: ClassVar[str] = "trained_mean"
    requires_training: ClassVar[bool] = True

    @property
    def model_warmup(self) -> int:
        return 0

    def _fit_model(self, train: list[np.ndarray], calibration: list[np.ndarray]) -> None:
        self.mean_ = float(np.nanmean(np.concatenate(train)))

    def _score_rows(self, x: np.ndarray) -> np.ndarray:
        return np.abs(np.nan_to_num(x) - self.mean_).max(axis=1)

    def _extra_state(self) -> dict[str, Any]:
        return {"mean": self.mean_}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.mean_ = float(state["mean"])


@pytest.fixture
def saved(tmp_path: Path, make_candles: Any) -> Path:
    frame = make_candles(300)
    _Trained().fit(frame).save(tmp_path / "m")
    return tmp_path / "m"


def _tamper(directory: Path, change: Any) -> Path:
    path = directory / METADATA_FILE
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta, allow_nan=True))
    return path


def test_untampered_model_loads_and_scores_the_same(saved: Path, make_candles: Any) -> None:
    frame = make_candles(300)
    again = _Trained.load(saved)
    assert np.allclose(again.score(frame).dropna(), _Trained().fit(frame).score(frame).dropna())


def _set(key: str, value: Any) -> Any:
    def change(meta: dict[str, Any]) -> None:
        target = meta
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        target[last] = value

    return change


def _drop(key: str) -> Any:
    return lambda meta: meta.pop(key)


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        (_set("format", 999), "format", "this vigil reads model format 1"),
        (_set("format", "1"), "format", "must be a whole number"),
        (_set("fitted", False), "fitted", "untrained model"),
        (_set("fitted", "yes"), "fitted", "must be true or false"),
        (_set("scaler.scale", [1.0, 0.0, 1.0]), "scaler.scale[1]", "> 0"),
        (_set("scaler.scale", [1.0, -2.0, 1.0]), "scaler.scale[1]", "> 0"),
        (_set("scaler.center", [0.0, math.nan, 0.0]), "scaler.center[1]", "finite"),
        (_set("scaler.center", [0.0, 0.0]), "scaler", "center has 2 values but scale has 3"),
        (_set("scaler", {"center": [0.0] * 5, "scale": [1.0] * 5, "clip": 50.0}), "scaler.center", "features are 3"),
        (_set("scaler.clip", "big"), "scaler.clip", "finite number"),
        (_set("params", ["window", 3]), "params", "must be a JSON object"),
        (_set("features.mode", "pixels"), "features.mode", "must be one of candles, columns"),
        (_set("features.columns", []), "features.columns", "non-empty list"),
        (_set("features.norm_window", 0), "features.norm_window", "must be >= 1"),
        (_set("threshold", {"value": 3}), "threshold.policy", "missing"),
        (_set("threshold.center", math.nan), "threshold.center", "finite"),
        (_set("train_range_ms", [5, 1]), "train_range_ms", "ends before it starts"),
        (_set("detector", "zscore"), "detector", "holds a 'zscore' model"),
        (_drop("scaler"), "scaler", "missing"),
        (_drop("threshold"), "threshold", "missing"),
        (_set("state", "x"), "state", "JSON object"),
    ],
)
def test_tampered_metadata_is_refused_naming_file_and_key(saved: Path, change: Any, key: str, says: str) -> None:
    path = _tamper(saved, change)
    with pytest.raises(DetectorError) as info:
        _Trained.load(saved)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}") and says in message and "\n" not in message


def test_state_the_detector_cannot_use_is_named(saved: Path) -> None:
    _tamper(saved, _set("state.mean", "abc"))
    with pytest.raises(DetectorError, match=r"metadata\.json: params or state rejected: .*'abc'"):
        _Trained.load(saved)


@pytest.mark.parametrize("content", [b"\xff\xfe garbage", b"[1, 2", b"null"])
def test_unreadable_metadata_is_one_line(saved: Path, content: bytes) -> None:
    (saved / METADATA_FILE).write_bytes(content)
    with pytest.raises(DetectorError) as info:
        _Trained.load(saved)
    assert str(saved / METADATA_FILE) in str(info.value) and "\n" not in str(info.value)


def test_zscore_model_saved_before_any_fit_still_loads(tmp_path: Path) -> None:
    """A detector that needs no training is saved with ``fitted: false`` and that is fine."""
    ZScoreDetector().save(tmp_path / "z")
    assert ZScoreDetector.load(tmp_path / "z").fitted_ is False


# -- the pump-and-dump detector's pump_dump.json ------------------------------------------------
def _pump_folder(tmp_path: Path, meta: dict[str, Any], *, market_features: int = 4) -> Path:
    from detectors.pump.net import build_pump_network

    folder = tmp_path / "pump"
    folder.mkdir()
    build_pump_network(4, market_features, 2, filters=2, lstm_units=2, dense_units=2).save(folder / "model.keras")
    (folder / "pump_dump.json").write_text(json.dumps(meta, allow_nan=True))
    return folder


def _pump_meta(**change: Any) -> dict[str, Any]:
    meta = {
        "name": "pump_dump",
        "params": {"lookback": 4, "chunk_inputs": "ranked"},
        "grain": "chunks",
        "threshold": 0.4,
        "scaler": [[0.0] * 4, [1.0] * 4],
        "features": None,
    }
    meta.update(change)
    return meta


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ({"threshold": math.nan}, "threshold", "finite"),
        ({"threshold": 7}, "threshold", "probability"),
        ({"grain": "seconds"}, "grain", "must be one of chunks, candles"),
        ({"scaler": [[0.0] * 4, [1.0, 0.0, 1.0, 1.0]]}, "scaler[1] (std)[1]", "> 0"),
        ({"scaler": [[0.0] * 3, [1.0] * 3]}, "scaler", "model reads 4 market features"),
        ({"name": "zscore"}, "name", "not 'pump_dump'"),
        ({"params": "lookback=4"}, "params", "JSON object"),
    ],
)
def test_tampered_pump_metadata_is_refused(tmp_path: Path, change: dict[str, Any], key: str, says: str) -> None:
    from detectors.pump.detector import PumpDumpDetector

    folder = _pump_folder(tmp_path, _pump_meta(**change))
    with pytest.raises(DetectorError) as info:
        PumpDumpDetector.load(folder)
    assert str(info.value).startswith(f"{folder / 'pump_dump.json'}: {key}") and says in str(info.value)


@pytest.mark.slow
def test_sound_pump_metadata_loads(tmp_path: Path) -> None:
    from detectors.pump.detector import PumpDumpDetector

    det = PumpDumpDetector.load(_pump_folder(tmp_path, _pump_meta()))
    assert det.threshold_ == 0.4 and det.grain_ == "chunks"


def test_corrupt_pump_model_file_is_one_line(tmp_path: Path) -> None:
    from detectors.pump.detector import PumpDumpDetector

    folder = tmp_path / "pump"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not a zip file")
    (folder / "pump_dump.json").write_text(json.dumps(_pump_meta()))
    with pytest.raises(DetectorError) as info:
        PumpDumpDetector.load(folder)
    assert "model.keras" in str(info.value) and "\n" not in str(info.value)
