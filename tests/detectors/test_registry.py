from __future__ import annotations

import sys
from pathlib import Path

import pytest

from core.errors import ConfigError
from detectors.registry import available_detectors, create_detector, get_detector_class

PLUGIN = """
from detectors.zscore import ZScoreDetector

class PluginDetector(ZScoreDetector):
    name = "my_plugin"
"""


def test_registry_lists_builtins() -> None:
    names = available_detectors()
    for name in ("zscore", "lstm_forecaster", "lstm_autoencoder", "cnn_autoencoder", "pump_dump"):
        assert name in names


def test_registry_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown detector 'nope'.*lstm_forecaster.*zscore"):
        get_detector_class("nope")


def test_registry_loads_entry_point_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vigil_plugin_pkg.py").write_text(PLUGIN)
    dist = tmp_path / "vigil_plugin_pkg-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: vigil-plugin-pkg\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[vigil.detectors]\nmy_plugin = vigil_plugin_pkg:PluginDetector\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "my_plugin" in available_detectors()
    det = create_detector("my_plugin", window=10)
    assert type(det).__name__ == "PluginDetector"
    sys.modules.pop("vigil_plugin_pkg", None)


def test_registry_import_is_light() -> None:
    import subprocess

    code = "import sys, detectors.registry, detectors.base; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_detector_from_config_keeps_tuned_threshold_unless_set() -> None:
    from core.config import DetectorConfig
    from detectors.registry import detector_from_config

    plain = detector_from_config("zscore", DetectorConfig(params={"window": 30}))
    assert plain.params["window"] == 30 and plain.params["threshold"]["value"] == 12.0
    cfg = DetectorConfig.model_validate({"threshold": {"policy": "rolling_quantile", "quantile": 0.99}})
    assert detector_from_config("zscore", cfg).threshold_.policy == "rolling_quantile"


def test_create_detector_rejects_unknown_parameter() -> None:
    with pytest.raises(ConfigError, match="unknown parameter.*windw.*accepted:.*window"):
        create_detector("zscore", windw=5)
    assert create_detector("lstm_autoencoder", latent=16, cell="gru", lookback=12).params["latent"] == 16


def test_registry_resolves_pump_dump() -> None:
    klass = get_detector_class("pump_dump")
    assert klass.name == "pump_dump"


DUCK = """
class DuckDetector:
    '''Has every method of the contract but is not a detectors.base.Detector.'''
    name = "duck"
    def fit(self, frames, labels=None): return self
    def score(self, frame): ...
    def score_batch(self, frames, last_n=1): ...
    def thresholds(self, scores): ...
    def is_anomaly(self, scores): ...
    def save(self, directory): ...
    @classmethod
    def load(cls, directory): ...
"""


def test_registry_refuses_a_plugin_that_is_not_a_detector_subclass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.errors import DetectorError
    from detectors import registry

    (tmp_path / "vigil_duck_pkg.py").write_text(DUCK)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.BUILTIN_DETECTORS, "duck", "vigil_duck_pkg:DuckDetector")
    with pytest.raises(DetectorError, match="'duck'.*not a detectors.base.Detector subclass"):
        get_detector_class("duck")
    sys.modules.pop("vigil_duck_pkg", None)


def test_every_builtin_is_a_detector_and_says_its_kind() -> None:
    from detectors import Detector

    for name in available_detectors():
        klass = get_detector_class(name)
        assert issubclass(klass, Detector) and klass.name == name
    pump = get_detector_class("pump_dump")
    assert pump.supervised and pump.probability_output and pump.event_kind == "pump_dump"
    zscore = get_detector_class("zscore")
    assert not zscore.supervised and not zscore.probability_output and zscore.event_kind == "anomaly"
