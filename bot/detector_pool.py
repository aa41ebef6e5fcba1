"""The detectors the main job runs: loaded or trained once, swapped on retrain.

Models come from the model store (``models`` table + versioned ``.keras``
directories). A detector that needs training and has no stored model is
trained on the history at hand the first time the loop sees enough of it, so
a fresh install (or the demo) works without a separate training step.

Chat commands can switch a detector off for a symbol or override its
threshold (``threshold_overrides``, global rows with ``chat_id = 0``); the
pool reads them once per cycle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Config, DetectorConfig
from storage.models import ThresholdOverride

__all__ = ["DEFAULT_DETECTORS", "DetectorPool"]

log = logging.getLogger(__name__)

# What runs when the config names no detectors: the cheap baseline and the two
# neural detectors of the seed design.
DEFAULT_DETECTORS: dict[str, dict[str, Any]] = {
    "zscore": {},
    "lstm_forecaster": {},
    "lstm_autoencoder": {},
}


@dataclass
class _Slot:
    name: str
    config: DetectorConfig
    detector: Any = None
    version: str | None = None


class DetectorPool:
    """Holds one fitted detector per enabled name and answers per-symbol questions."""

    def __init__(
        self,
        cfg: Config,
        factory: sessionmaker[Session],
        model_root: str | Path,
        *,
        min_train_rows: int = 200,
        param_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.factory = factory
        self.model_root = Path(model_root)
        self.min_train_rows = min_train_rows
        configured = cfg.detectors or {name: DetectorConfig(**kw) for name, kw in DEFAULT_DETECTORS.items()}
        self._slots = {name: _Slot(name, dc) for name, dc in configured.items() if dc.enabled}
        self._param_overrides = {k: dict(v) for k, v in (param_overrides or {}).items()}
        self._overrides: dict[tuple[str, str], ThresholdOverride] = {}
        self._lock = threading.Lock()

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def _params(self, slot: _Slot) -> dict[str, Any]:
        return {**slot.config.params, **self._param_overrides.get(slot.name, {})}

    def _create(self, slot: _Slot) -> Any:
        from detectors.registry import create_detector
        from detectors.thresholds import make_threshold

        return create_detector(slot.name, threshold=make_threshold(slot.config.threshold), **self._params(slot))

    def ensure_ready(self, frames: Mapping[str, pd.DataFrame]) -> None:
        """Load or train every detector that is not ready yet; refresh overrides."""
        self._refresh_overrides()
        for slot in self._slots.values():
            if slot.detector is not None:
                continue
            try:
                self._load_or_train(slot, frames)
            except Exception:  # a detector that cannot start is skipped, the others run
                log.exception("detector %s could not be loaded or trained; skipping it this cycle", slot.name)

    def _load_or_train(self, slot: _Slot, frames: Mapping[str, pd.DataFrame]) -> None:
        from detectors.store import load_latest_model

        with self.factory() as session:
            loaded = load_latest_model(session, slot.name, scope=slot.config.scope)
        if loaded is not None:
            detector, version = loaded if isinstance(loaded, tuple) else (loaded, None)
            slot.detector, slot.version = detector, version
            log.info("detector %s: loaded model %s", slot.name, version)
            return
        detector = self._create(slot)
        if getattr(detector, "requires_training", True):
            usable = {k: f for k, f in frames.items() if len(f) >= self.min_train_rows}
            if not usable:
                log.info("detector %s: waiting for %d bars of history to train", slot.name, self.min_train_rows)
                return
            self._train_and_store(slot, detector, usable)
        else:
            detector.fit(frames)
            slot.detector, slot.version = detector, "untrained"

    def _train_and_store(self, slot: _Slot, detector: Any, frames: Mapping[str, pd.DataFrame]) -> None:
        from detectors.store import save_model

        log.info("detector %s: training on %d symbols", slot.name, len(frames))
        detector.fit(dict(frames))
        with self.factory.begin() as session:
            record = save_model(session, detector, scope=slot.config.scope, root=self.model_root)
            version = f"v{record.version}"
        with self._lock:
            slot.detector, slot.version = detector, version
        log.info("detector %s: trained and stored as %s", slot.name, version)

    def retrain(self, frames: Mapping[str, pd.DataFrame]) -> list[str]:
        """Train fresh models on recent data and swap them in; returns the names retrained.

        Meant to run in a worker thread: scoring keeps using the old model
        until the new one is stored.
        """
        done = []
        for slot in self._slots.values():
            detector = self._create(slot)
            if not getattr(detector, "requires_training", True):
                continue
            usable = {k: f for k, f in frames.items() if len(f) >= self.min_train_rows}
            if not usable:
                continue
            try:
                self._train_and_store(slot, detector, usable)
                done.append(slot.name)
            except Exception:
                log.exception("retraining %s failed; keeping the previous model", slot.name)
        return done

    def active(self) -> list[tuple[str, Any, str | None]]:
        with self._lock:
            return [(s.name, s.detector, s.version) for s in self._slots.values() if s.detector is not None]

    def versions(self) -> dict[str, str | None]:
        return {s.name: s.version for s in self._slots.values()}

    def _refresh_overrides(self) -> None:
        with self.factory() as session:
            rows = session.scalars(select(ThresholdOverride).where(ThresholdOverride.chat_id == 0)).all()
        self._overrides = {(r.symbol, r.detector): r for r in rows}

    def _override(self, detector: str, symbol: str, attr: str) -> Any:
        for key in ((symbol, detector), ("", detector), (symbol, ""), ("", "")):
            row = self._overrides.get(key)
            if row is not None and getattr(row, attr) is not None:
                return getattr(row, attr)
        return None

    def enabled_for(self, detector: str, symbol: str) -> bool:
        value = self._override(detector, symbol, "enabled")
        return True if value is None else bool(value)

    def thresholds_for(self, name: str, symbol: str, detector: Any, scores: pd.Series) -> pd.Series | float:
        value = self._override(name, symbol, "value")
        if value is not None:
            return float(value)
        return detector.thresholds(scores)
