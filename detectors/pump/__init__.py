"""The pump-and-dump family: the CNN-LSTM classifier, La Morgia chunk and candle features, labels, metrics.

See ``docs/pump_dump.md``. Importing the package is light; TensorFlow loads only
when a model is built or loaded.
"""

from __future__ import annotations

__all__: list[str] = []
