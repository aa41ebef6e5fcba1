"""The detectors the main job runs: loaded or trained once, swapped on retrain.

Models come from the model store (``models`` table + versioned ``.keras``
directories). A detector that needs training and has no stored model is
trained on the history at hand the first time the loop sees enough of it, so
a fresh install (or the demo) works without a separate training step.

Chat commands can switch a detector off for a symbol or override its
threshold (``threshold_overrides``, global rows with ``chat_id = 0``); the
pool reads them once per cycle and resolves them with
``storage.thresholds.resolve_override``, the same function the outbox uses.
Alarms come from ``detectors.alarms.detector_alarms``, the rule backtests use; in
the live cycle through ``bot.runtime.live_alarms``, which carries each symbol's
recent scores and incident state from cycle to cycle so the rule sees the series,
not just the bars of one cycle.

Nothing here knows a detector by name: what kind of training a detector needs
(``supervised``) and the settings it pretrains with (``live_defaults``) are
properties of its class.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.runtime.live_alarms import LiveAlarms
from core.config import Config, DetectorConfig
from storage.models import Severity, ThresholdOverride
from storage.thresholds import Resolved, list_overrides, resolve_override

__all__ = ["DEFAULT_DETECTORS", "DetectorPool"]

log = logging.getLogger(__name__)

# What runs when the config names no detectors: the cheap baseline and the two
# neural detectors of the seed design.
DEFAULT_DETECTORS: dict[str, dict[str, Any]] = {
    "zscore": {},
    "lstm_forecaster": {},
    "lstm_autoencoder": {},
    "pump_dump": {},
}
# Seed of the synthetic labelled market supervised detectors pretrain on.
LABELLED_SEED = 90_210


def _timeframe_of(step: pd.Timedelta) -> str:
    seconds = int(step.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


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
        labelled_symbols: int = 20,
        labelled_bars: int = 1500,
        param_overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.factory = factory
        self.model_root = Path(model_root)
        self.min_train_rows = min_train_rows
        self.labelled_symbols = labelled_symbols
        self.labelled_bars = labelled_bars
        configured = cfg.detectors or {name: DetectorConfig(**kw) for name, kw in DEFAULT_DETECTORS.items()}
        self._slots = {name: _Slot(name, dc) for name, dc in configured.items() if dc.enabled}
        self._param_overrides = {k: dict(v) for k, v in (param_overrides or {}).items()}
        self._overrides: list[ThresholdOverride] = []
        self._lock = threading.Lock()
        self.live = LiveAlarms()

    @property
    def names(self) -> list[str]:
        return list(self._slots)

    def _params(self, slot: _Slot) -> dict[str, Any]:
        from detectors.registry import get_detector_class

        defaults = get_detector_class(slot.name).live_defaults
        return {**defaults, **slot.config.params, **self._param_overrides.get(slot.name, {})}

    def _create(self, slot: _Slot) -> Any:
        from detectors.registry import detector_from_config

        config = slot.config.model_copy(update={"params": self._params(slot)})
        return detector_from_config(slot.name, config)

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
        from detectors.registry import get_detector_class
        from storage.model_records import latest_model_record

        with self.factory() as session:
            record = latest_model_record(session, slot.name, scope=slot.config.scope)
        if record is not None:
            slot.detector = get_detector_class(record.detector).load(record.path)
            slot.version = f"v{record.version}"
            log.info("detector %s: loaded model %s", slot.name, slot.version)
            return
        detector = self._create(slot)
        usable = self._usable(detector, frames)
        if not usable:
            log.debug("detector %s: waiting for enough history to start", slot.name)
            return
        if not detector.requires_training:
            detector.fit(usable)
            slot.detector, slot.version = detector, "untrained"
            return
        self._train_and_store(slot, detector, usable)

    def _usable(self, detector: Any, frames: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
        """The symbols with enough history to fit ``detector`` on."""
        need = int(detector.warmup) + 2
        if detector.requires_training:
            need = max(need, self.min_train_rows)
        return {k: f for k, f in frames.items() if len(f) >= need}

    def _train_and_store(self, slot: _Slot, detector: Any, frames: Mapping[str, pd.DataFrame]) -> None:
        from detectors.store import save_model

        if detector.supervised:
            self._fit_on_synthetic(slot.name, detector, frames)
        else:
            log.info("detector %s: training on %d symbols", slot.name, len(frames))
            detector.fit(dict(frames))
        with self.factory.begin() as session:
            record = save_model(session, detector, scope=slot.config.scope, root=self.model_root)
            version = f"v{record.version}"
        with self._lock:
            slot.detector, slot.version = detector, version
        log.info("detector %s: trained and stored as %s", slot.name, version)

    def _fit_on_synthetic(self, name: str, detector: Any, frames: Mapping[str, pd.DataFrame]) -> None:
        """Train a supervised detector on a synthetic labelled market.

        Live candles carry no labels, and the shared pump-and-dump files are
        at trade-chunk grain, not candle grain. So a classifier like
        ``pump_dump`` is trained on the synthetic market's injected pumps, at
        the timeframe being watched and from a seed of its own: never on the
        series it will then watch. ``vigil pumpdump train`` replaces it with a
        model trained on real labelled data where a user has some.
        """
        from feeds.synthetic import generate_market

        first = next(iter(frames.values()))
        step = (first.index[1] - first.index[0]) if len(first) > 1 else pd.Timedelta(hours=1)
        timeframe = _timeframe_of(step)
        # labelled_bars bars per symbol at every timeframe (a 30-day floor made 1m pretraining 43,200 bars a symbol)
        days = self.labelled_bars * step / pd.Timedelta(days=1)
        # Twice the generator's default anomaly rate: enough pumps to learn from in few bars.
        market = generate_market(
            self.labelled_symbols, days=days, timeframe=timeframe, seed=LABELLED_SEED, anomaly_rate=1 / 150
        )
        log.info(
            "detector %s: training on a synthetic labelled market (%d symbols, %g days of %s)",
            name,
            self.labelled_symbols,
            days,
            timeframe,
        )
        detector.fit(dict(market.candles), market.labels)

    def retrain(self, frames: Mapping[str, pd.DataFrame]) -> list[str]:
        """Train fresh models on recent data and swap them in; returns the names retrained.

        Meant to run in a worker thread: scoring keeps using the old model
        until the new one is stored.
        """
        done = []
        for slot in self._slots.values():
            detector = self._create(slot)
            if detector.supervised or not detector.requires_training:  # learns from labels, or needs no training
                continue
            usable = self._usable(detector, frames)
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
            self._overrides = list_overrides(session)

    def override(self, detector: str, symbol: str) -> Resolved:
        """The threshold override and on/off switch for ``detector`` on ``symbol`` (as read this cycle)."""
        return resolve_override(self._overrides, symbol, detector)

    def live_alarms(
        self,
        name: str,
        detector: Any,
        version: str | None,
        frames: Mapping[str, pd.DataFrame],
        *,
        timeframe: str,
        last_n: int,
        since: pd.Timestamp | None,
        min_severity: Severity | str = Severity.LOW,
    ) -> dict[str, pd.DataFrame]:
        """The cycle's alarms of ``detector`` per ``exchange:symbol`` (bars at or after ``since``), under each
        symbol's override, from one batched model call (``bot.runtime.live_alarms``)."""
        return self.live.judge(
            name,
            timeframe,
            detector,
            (version, id(detector)),
            frames,
            last_n=last_n,
            since=since,
            override=lambda symbol: self.override(name, symbol),
            min_severity=min_severity,
        )

    def alarms_for(
        self,
        name: str,
        symbol: str,
        detector: Any,
        scores: pd.Series,
        *,
        min_severity: Severity | str = Severity.LOW,
    ) -> pd.DataFrame:
        """``detectors.alarms.detector_alarms`` under this symbol's override; none when switched off."""
        from detectors.alarms import ALARM_COLUMNS, detector_alarms

        resolved = self.override(name, symbol)
        if not resolved.enabled:
            return pd.DataFrame(columns=ALARM_COLUMNS, index=scores.index[:0])
        return detector_alarms(detector, scores, threshold=resolved.threshold, min_severity=min_severity)
