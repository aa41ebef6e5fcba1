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
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.reports import DetectorRun
from bot.runtime.live_alarms import LiveAlarms
from core.config import DEFAULT_DETECTORS, Config, DetectorConfig
from storage.models import Severity, ThresholdOverride, utcnow
from storage.thresholds import Resolved, list_overrides, resolve_override

__all__ = ["DEFAULT_DETECTORS", "DetectorPool"]

log = logging.getLogger(__name__)

# Seed of the synthetic labelled market supervised detectors pretrain on.
LABELLED_SEED = 90_210
# At most this many symbols (evenly spread) fit a detector that has nothing to train.
FIT_SAMPLE = 64


def _sample(frames: Mapping[str, pd.DataFrame], n: int) -> dict[str, pd.DataFrame]:
    """At most ``n`` of ``frames``, evenly spread over the sorted keys (all of them when there are fewer)."""
    keys = sorted(frames)
    if len(keys) <= n:
        return dict(frames)
    step = len(keys) / n
    return {keys[int(i * step)]: frames[keys[int(i * step)]] for i in range(n)}


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
    waiting: bool = False  # not enough history yet to train or fit on
    last_error: str | None = None
    last_error_at: datetime | None = None
    failing: bool = False  # the last load, training or scoring of this detector failed

    def failed(self, err: BaseException) -> None:
        self.last_error, self.last_error_at, self.failing = f"{type(err).__name__}: {err}"[:300], utcnow(), True


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
        self._slots = {name: _Slot(name, dc) for name, dc in cfg.detectors_in_use().items() if dc.enabled}
        self._param_overrides = {k: dict(v) for k, v in (param_overrides or {}).items()}
        self._overrides: list[ThresholdOverride] = []
        self._lock = threading.Lock()
        # Cycles of different timeframes run at once; one of them loads or trains a missing model.
        self._ready_lock = threading.Lock()
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
        with self._ready_lock:
            for slot in self._slots.values():
                if slot.detector is not None:
                    continue
                try:
                    self._load_or_train(slot, frames)
                except Exception as err:  # a detector that cannot start is skipped, the others run
                    slot.failed(err)
                    log.exception("detector %s could not be loaded or trained; skipping it this cycle", slot.name)

    def _load_or_train(self, slot: _Slot, frames: Mapping[str, pd.DataFrame]) -> None:
        from detectors.registry import get_detector_class
        from detectors.store import model_path
        from storage.model_records import latest_model_record

        with self.factory() as session:
            record = latest_model_record(session, slot.name, scope=slot.config.scope)
        if record is not None:
            slot.detector = get_detector_class(record.detector).load(model_path(record, self.model_root))
            slot.version = f"v{record.version}"
            log.info("detector %s: loaded model %s", slot.name, slot.version)
            return
        if self._load_shipped(slot, frames):
            return
        detector = self._create(slot)
        usable = self._usable(detector, frames)
        slot.waiting = not usable
        if not usable:
            log.debug("detector %s: waiting for enough history to start", slot.name)
            return
        if not detector.requires_training:
            # Nothing to train, but scaling and daily profiles to fit, at every start: on a sample of the
            # symbols (fitting zscore on all 500 took 5-14 s of each start; the profile is shared anyway).
            detector.fit(_sample(usable, FIT_SAMPLE))
            slot.detector, slot.version, slot.failing = detector, "untrained", False
            return
        self._train_and_store(slot, detector, usable)

    def _load_shipped(self, slot: _Slot, frames: Mapping[str, pd.DataFrame]) -> bool:
        """Use the model the package ships for this timeframe (``Detector.pretrained``), if there is one.

        Only when the config asks for nothing but the defaults (an ``alert_budget`` aside): custom
        hyper-parameters mean the user wants their own training.
        """
        from detectors.registry import get_detector_class

        shipped = getattr(get_detector_class(slot.name), "pretrained", None)
        first = next((f for f in frames.values() if len(f) > 1), None)
        params = dict(slot.config.params)
        budget = params.pop("alert_budget", None)
        if shipped is None or first is None or params or self._param_overrides.get(slot.name):
            return False
        detector = shipped("candles", _timeframe_of(first.index[1] - first.index[0]), alert_budget=budget)
        if detector is None:
            return False
        with self._lock:
            slot.detector, slot.version = detector, "shipped"
        log.info(
            "detector %s: using the model shipped for this timeframe (threshold %.4f)", slot.name, detector.threshold_
        )
        return True

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
            slot.detector, slot.version, slot.failing = detector, version, False
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
            except Exception as err:
                slot.failed(err)
                log.exception("retraining %s failed; keeping the previous model", slot.name)
        return done

    def note_failure(self, name: str, err: BaseException) -> None:
        """Scoring with ``name`` failed this cycle (``/detectors`` and ``/status`` say so until it works again)."""
        if name in self._slots:
            self._slots[name].failed(err)

    def note_success(self, name: str) -> None:
        """Scoring with ``name`` worked this cycle; its last error stays on record, it is no longer failing."""
        if name in self._slots:
            self._slots[name].failing = False

    def runs(self) -> list[DetectorRun]:
        """What each enabled detector is doing in this process, for ``/detectors`` and ``/status``."""
        return [
            DetectorRun(
                name=s.name,
                loaded=s.detector is not None,
                version=s.version,
                waiting=s.detector is None and s.waiting,
                failing=s.failing,
                last_error=s.last_error,
                last_error_at=s.last_error_at,
            )
            for s in self._slots.values()
        ]

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

    def alarms_many(
        self,
        name: str,
        detector: Any,
        batch: Mapping[str, pd.Series],
        *,
        min_severity: Severity | str = Severity.LOW,
    ) -> dict[str, pd.DataFrame]:
        """:meth:`alarms_for` of every ``exchange:symbol`` in ``batch`` that fires (others are left out).

        Why: the rule costs a few hundred microseconds of pandas per symbol, which at 500
        symbols and four detectors was most of the scoring stage. When the detector's
        threshold is one number (``constant_threshold``), one vectorised comparison of every
        symbol's scores with that symbol's threshold (its override, or the detector's own;
        none when switched off) finds the symbols that fire, and only those go through the
        rule: the others could not have produced an alarm, so the result is the same.
        """
        limit = detector.constant_threshold() if hasattr(detector, "constant_threshold") else None
        keys = list(batch)
        if limit is not None and keys:
            # each symbol's threshold: its override (the order of storage.thresholds) or the detector's own
            resolved = [self.override(name, key.partition(":")[2]) for key in keys]
            limits = np.array(
                [np.inf if not r.enabled else limit if r.threshold is None else r.threshold for r in resolved]
            )
            values = [s.to_numpy(dtype="float64") for s in batch.values()]
            lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
            owners = np.repeat(np.arange(len(keys)), lengths)
            above = np.concatenate(values) > limits[owners]  # NaN compares False, as in the rule
            keys = [keys[i] for i in np.unique(owners[above])]
        out = {}
        for key in keys:
            fired = self.alarms_for(name, key.partition(":")[2], detector, batch[key], min_severity=min_severity)
            if len(fired):
                out[key] = fired
        return out

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
