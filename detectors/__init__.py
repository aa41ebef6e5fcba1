"""Anomaly detectors: one contract, a registry, pure features, thresholds and the alarm rule.

The public face::

    from detectors import Detector, create_detector, load_detector, detector_alarms

Importing this package is light (numpy, pandas); TensorFlow loads only when a
Keras detector is created or loaded. See ``docs/detectors.md``.
"""

from __future__ import annotations

from detectors.alarms import alarms, detector_alarms, severity_for
from detectors.base import Detector, SeriesDetector
from detectors.registry import (
    available_detectors,
    create_detector,
    detector_from_config,
    get_detector_class,
    load_detector,
)

__all__ = [
    "Detector",
    "SeriesDetector",
    "alarms",
    "available_detectors",
    "create_detector",
    "detector_alarms",
    "detector_from_config",
    "get_detector_class",
    "load_detector",
    "severity_for",
]
