"""Tiny detectors for tests of the loop around detectors (state, model files), without TensorFlow.

Register them for one test with ``monkeypatch.setitem(registry.BUILTIN_DETECTORS, "tiny_model",
"tests.fakes.detectors:TinyModel")``. ``TinyModel`` needs training (so the pool trains it and
stores a model version with its training range); ``Broken`` loads fine and fails every score.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import pandas as pd

from detectors.base import Detector
from detectors.thresholds import StaticThreshold

__all__ = ["Broken", "TinyModel", "register"]


class TinyModel(Detector):
    """Score = volume / the training mean volume; static threshold 50. Trained, saved and loaded as JSON."""

    name = "tiny_model"
    requires_training = True

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.threshold_ = StaticThreshold(50.0)
        self.mean_: float | None = None
        self.train_range_: tuple[int, int] | None = None

    @property
    def warmup(self) -> int:
        return 1

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        series = frames.values() if isinstance(frames, Mapping) else [frames]
        series = list(series)
        self.mean_ = float(pd.concat([f["volume"] for f in series]).mean())
        starts = [int(f.index[0].value // 10**6) for f in series]
        ends = [int(f.index[-1].value // 10**6) for f in series]
        self.train_range_ = (min(starts), max(ends))
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        assert self.mean_ is not None
        return (frame["volume"] / self.mean_).rename("score")

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.thresholds(scores)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"detector": self.name, "mean": self.mean_, "train_range_ms": self.train_range_}
        (path / "metadata.json").write_text(json.dumps(meta), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        meta = json.loads((Path(directory) / "metadata.json").read_text(encoding="utf-8"))
        det = cls()
        det.mean_ = meta["mean"]
        det.train_range_ = tuple(meta["train_range_ms"]) if meta["train_range_ms"] else None  # type: ignore[assignment]
        return det


class Broken(TinyModel):
    """Starts like any detector, then fails every time it scores."""

    name = "broken"
    requires_training = False

    def score(self, frame: pd.DataFrame) -> pd.Series:
        raise RuntimeError("boom: the model file is corrupt")


def register(monkeypatch: Any) -> None:
    """Make ``tiny_model`` and ``broken`` known to the registry for one test."""
    from detectors import registry

    monkeypatch.setitem(registry.BUILTIN_DETECTORS, "tiny_model", "tests.fakes.detectors:TinyModel")
    monkeypatch.setitem(registry.BUILTIN_DETECTORS, "broken", "tests.fakes.detectors:Broken")
