"""Anomaly detectors: one contract (``detectors.base``), pure features and thresholds, a registry.

Nothing heavy is imported here; TensorFlow loads only when a Keras detector is created.
See ``docs/detectors.md``.
"""

from __future__ import annotations

__all__: list[str] = []
