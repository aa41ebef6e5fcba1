"""Autoencoders: reconstruct the window that ends at ``t``; the reconstruction error at ``t`` is the score.

Registered names (the BTC LSTM-autoencoder project's experiments, each a name so they
sit side by side in the comparison table; every parameter can also be set on any of them):

* ``lstm_autoencoder``: LSTM encoder (``latent`` units, default 64) -> RepeatVector ->
  LSTM decoder -> TimeDistributed Dense.
* ``gru_autoencoder``: the same with GRU cells (``cell="gru"``).
* ``attention_autoencoder``: the LSTM autoencoder whose decoder attends over the encoder's
  per-step outputs (``attention=True``).
* ``cnn_autoencoder``: a 1D-CNN autoencoder (``latent`` filters at the bottleneck, default 32).

``latent`` (16/32/64/128 in the experiments) and ``dropout`` are parameters of all of them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from detectors.keras_base import KerasWindowDetector
from detectors.networks import build_cnn_autoencoder, build_rnn_autoencoder

__all__ = ["AttentionAutoencoder", "CNNAutoencoder", "GRUAutoencoder", "LSTMAutoencoder"]


class LSTMAutoencoder(KerasWindowDetector):
    """Extra parameters: ``latent`` (64), ``cell`` ("lstm" | "gru"), ``attention`` (False)."""

    name: ClassVar[str] = "lstm_autoencoder"
    default_cell: ClassVar[str] = "lstm"
    default_attention: ClassVar[bool] = False

    def __init__(self, *, latent: int = 64, cell: str | None = None, attention: bool | None = None, **kw: Any) -> None:
        cell = cell or self.default_cell
        if cell not in ("lstm", "gru"):
            from core.errors import ConfigError

            raise ConfigError(f"{self.name}: cell must be 'lstm' or 'gru', got {cell!r}")
        attention = self.default_attention if attention is None else bool(attention)
        super().__init__(latent=int(latent), cell=cell, attention=attention, **kw)

    @property
    def window_length(self) -> int:
        return int(self.params["lookback"])

    def _build(self, n_features: int) -> Any:
        p = self.params
        return build_rnn_autoencoder(
            p["lookback"],
            n_features,
            latent=p["latent"],
            cell=p["cell"],
            attention=p["attention"],
            dropout=p["dropout"],
            lr=p["lr"],
        )

    def _split(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return windows, windows

    def _last_step_error(self, windows: np.ndarray, output: np.ndarray) -> np.ndarray:
        return windows[:, -1] - output[:, -1]


class GRUAutoencoder(LSTMAutoencoder):
    name: ClassVar[str] = "gru_autoencoder"
    default_cell: ClassVar[str] = "gru"


class AttentionAutoencoder(LSTMAutoencoder):
    name: ClassVar[str] = "attention_autoencoder"
    default_attention: ClassVar[bool] = True


class CNNAutoencoder(KerasWindowDetector):
    """Extra parameters: ``latent`` (32 bottleneck filters), ``filters`` (32)."""

    name: ClassVar[str] = "cnn_autoencoder"

    def __init__(self, *, latent: int = 32, filters: int = 32, **kw: Any) -> None:
        super().__init__(latent=int(latent), filters=int(filters), **kw)

    @property
    def window_length(self) -> int:
        return int(self.params["lookback"])

    def _build(self, n_features: int) -> Any:
        p = self.params
        return build_cnn_autoencoder(
            p["lookback"], n_features, latent=p["latent"], filters=p["filters"], dropout=p["dropout"], lr=p["lr"]
        )

    def _split(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return windows, windows

    def _last_step_error(self, windows: np.ndarray, output: np.ndarray) -> np.ndarray:
        return windows[:, -1] - output[:, -1]
