"""Detectors by name: a built-in dict of lazy ``module:Class`` paths plus the
``vigil.detectors`` entry-point group for third-party packages.

Nothing heavy is imported until a class is asked for, so ``vigil --help`` never
loads TensorFlow. A third-party package registers a detector with::

    [project.entry-points."vigil.detectors"]
    my_detector = "my_pkg.detector:MyDetector"
"""

from __future__ import annotations

import importlib
import inspect
import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import ConfigError, DetectorError

if TYPE_CHECKING:
    from core.config import DetectorConfig
    from detectors.base import Detector

__all__ = [
    "BUILTIN_DETECTORS",
    "ENTRY_POINT_GROUP",
    "available_detectors",
    "create_detector",
    "default_thresholds",
    "detector_from_config",
    "get_detector_class",
    "load_detector",
]

log = logging.getLogger(__name__)
ENTRY_POINT_GROUP = "vigil.detectors"

BUILTIN_DETECTORS: dict[str, str] = {
    "zscore": "detectors.zscore:ZScoreDetector",
    "lstm_forecaster": "detectors.forecaster:LSTMForecaster",
    "lstm_autoencoder": "detectors.autoencoder:LSTMAutoencoder",
    "gru_autoencoder": "detectors.autoencoder:GRUAutoencoder",
    "attention_autoencoder": "detectors.autoencoder:AttentionAutoencoder",
    "cnn_autoencoder": "detectors.autoencoder:CNNAutoencoder",
    "pump_dump": "detectors.pump.detector:PumpDumpDetector",
    "windowed_gaussian": "detectors.classical:WindowedGaussianDetector",
    "relative_entropy": "detectors.classical:RelativeEntropyDetector",
    "divergence": "detectors.divergence:DivergenceDetector",
}


def _entry_point_targets() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_detectors() -> list[str]:
    """Every known name: built-ins and installed entry points, sorted."""
    return sorted(set(BUILTIN_DETECTORS) | set(_entry_point_targets()))


def _import_target(name: str, target: str) -> Any:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as err:
        raise DetectorError(f"detector {name!r}: cannot import {target!r}: {err}") from err


def get_detector_class(name: str) -> type[Detector]:
    """The class registered under ``name``; unknown names raise ConfigError listing the valid ones.

    Every registered class, plug-ins included, must subclass :class:`detectors.base.Detector`.
    """
    from detectors.base import Detector

    if name in BUILTIN_DETECTORS:
        klass = _import_target(name, BUILTIN_DETECTORS[name])
    else:
        eps = _entry_point_targets()
        if name not in eps:
            raise ConfigError(f"unknown detector {name!r}; valid names: {', '.join(available_detectors())}")
        try:
            klass = eps[name].load()
        except Exception as err:  # a broken plugin must say which one
            raise DetectorError(f"detector {name!r}: entry point {eps[name].value!r} failed to load: {err}") from err
    if not (isinstance(klass, type) and issubclass(klass, Detector)):
        raise DetectorError(f"detector {name!r}: {klass!r} is not a detectors.base.Detector subclass")
    return klass


def load_detector(directory: str | Path) -> Detector:
    """Rebuild the detector saved in ``directory``, whatever its class (found by its saved name)."""
    from detectors.base import saved_detector_name

    return get_detector_class(saved_detector_name(directory)).load(directory)


# Modules whose classes name every hyper-parameter in their __init__ signatures (typos are caught);
# other detectors (pump_dump, plug-ins) may take **kwargs and validate on their own.
_CHECKED_MODULES = {
    "detectors.zscore",
    "detectors.forecaster",
    "detectors.autoencoder",
    "detectors.classical",
    "detectors.divergence",
}


def _accepted_params(klass: type) -> set[str]:
    """Keyword names any ``__init__`` along the class's MRO declares (the hyper-parameters)."""
    names: set[str] = set()
    for cls in klass.__mro__:
        init = cls.__dict__.get("__init__")
        if init is None or cls is object:
            continue
        for p in inspect.signature(init).parameters.values():
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self":
                names.add(p.name)
    return names


def create_detector(name: str, **params: Any) -> Detector:
    """A new, unfitted detector; bad hyper-parameters raise ConfigError naming them."""
    klass = get_detector_class(name)
    known = _accepted_params(klass)
    unknown = sorted(set(params) - known) if klass.__module__ in _CHECKED_MODULES else []
    if unknown:
        raise ConfigError(
            f"detector {name!r}: unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(sorted(known))}"
        )
    try:
        return klass(**params)
    except TypeError as err:
        raise ConfigError(f"detector {name!r}: bad parameters {sorted(params)}: {err}") from None


def default_thresholds(name: str) -> dict[str, Any]:
    """What ``name`` alarms with when its config sets no threshold: per input kind, every key filled in.

    ``SeriesDetector`` classes have one default for candles and one for raw series; other
    detectors (``pump_dump``) decide theirs when they are fitted.
    """
    from core.config import validate_threshold

    klass = get_detector_class(name)
    candles = getattr(klass, "default_threshold", None)
    if candles is None:
        return {"all inputs": "chosen when fitted"}
    raw = getattr(klass, "default_threshold_columns", None) or candles
    return {
        "candles": validate_threshold(candles).model_dump(exclude_none=True),
        "raw series": validate_threshold(raw).model_dump(exclude_none=True),
    }


def detector_from_config(name: str, cfg: DetectorConfig) -> Detector:
    """A detector from a ``[detectors.<name>]`` config table.

    The threshold is passed on only when the table sets one explicitly; otherwise the
    detector keeps its own tuned default (the config model's default, k_sigma k=4, is a
    generic placeholder that would make the neural detectors far too noisy).
    """
    params = dict(cfg.params)
    if "threshold" in cfg.model_fields_set:
        params["threshold"] = cfg.threshold.model_dump(exclude_none=True)
    return create_detector(name, **params)
