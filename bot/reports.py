"""What ``/detectors`` and ``/status`` report, and how a detector's real state is worked out.

The types are plain data (the handlers format them, ``bot.telegram.describe``);
:func:`detector_statuses` is pure, so the rules (config, chat switches, trained
models, what the loop runs) are decided in one place and tested without a bot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.config import DetectorConfig
from storage.models import Cycle, ThresholdOverride
from storage.thresholds import resolve_override

__all__ = ["DetectorReport", "DetectorRun", "DetectorStatus", "StatusReport", "detector_statuses"]


@dataclass(frozen=True)
class DetectorRun:
    """What one enabled detector is doing in the process that runs the loop (``bot.runtime.detector_pool``)."""

    name: str
    loaded: bool  # a model (or a fitted statistical detector) is in memory and scores each cycle
    version: str | None  # "v3", "untrained" (nothing to train), None before it is ready
    waiting: bool = False  # not enough history yet to train or fit
    failing: bool = False  # its last load, training or scoring failed
    last_error: str | None = None
    last_error_at: datetime | None = None


@dataclass(frozen=True)
class DetectorStatus:
    """A detector's real state: what the config says, what chat switched, what was trained, what runs."""

    name: str
    in_config: bool  # named in the config (or in the default set when the config names none)
    enabled_in_config: bool
    switched_on: bool  # chat/CLI switch for the symbol asked about (every symbol when none): on unless switched off
    threshold: float | None  # threshold override that applies, if any
    exceptions: list[str] = field(default_factory=list)  # per-symbol switches and thresholds differing from that
    model: dict[str, Any] | None = None  # newest active model: version, created_at, train_start, train_end
    run: DetectorRun | None = None  # None when the loop does not run in this process


@dataclass(frozen=True)
class DetectorReport:
    detectors: list[DetectorStatus]
    available: list[str]  # registered but not in the config
    loop_here: bool  # whether this process runs the loop (else ``run`` is unknown)
    chat_muted_until: datetime | None = None
    symbols_muted: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    last_cycle: Cycle | None
    cycles_24h: int
    errors_24h: int
    markets: list[dict[str, Any]] = field(default_factory=list)  # symbol, timeframe, last_ts, lag_s, last_error, group
    models: list[dict[str, Any]] = field(default_factory=list)  # detector, scope, version, created_at, train range
    deliveries: dict[str, int] = field(default_factory=dict)
    #: per asset of a watched group: (on-chain source, metric, time of its newest stored value or None)
    onchain: dict[str, list[tuple[str, str, int | None]]] = field(default_factory=dict)
    detectors: list[DetectorRun] = field(default_factory=list)  # empty when the loop runs elsewhere
    telegram: Any = None  # bot.telegram.link.LinkState when this process runs the bot


def detector_statuses(
    configured: Mapping[str, DetectorConfig],
    overrides: Sequence[ThresholdOverride],
    seen: Iterable[str],
    models: Iterable[dict[str, Any]],
    runs: Iterable[DetectorRun] | None,
    symbol: str | None = None,
) -> list[DetectorStatus]:
    """One status per detector in the config or with stored events, for ``symbol`` (every symbol when None).

    ``runs`` is what the loop in this process reports (None when the loop runs elsewhere).
    For every symbol, per-symbol switches and thresholds that differ are listed as exceptions.
    """
    by_run = {r.name: r for r in runs or ()}
    newest = {m["detector"]: m for m in models}
    out = []
    for name in sorted(set(configured) | set(seen)):
        dc = configured.get(name)
        here = resolve_override(overrides, symbol or "", name)
        exceptions = []
        if symbol is None:
            for sym in sorted({r.symbol for r in overrides if r.symbol and r.detector in (name, "")}):
                there = resolve_override(overrides, sym, name)
                if there.enabled != here.enabled:
                    exceptions.append(f"{'on' if there.enabled else 'off'} for {sym}")
                if there.threshold != here.threshold and there.threshold is not None:
                    exceptions.append(f"threshold {there.threshold:g} for {sym}")
        out.append(
            DetectorStatus(
                name=name,
                in_config=dc is not None,
                enabled_in_config=dc is not None and dc.enabled,
                switched_on=here.enabled,
                threshold=here.threshold,
                exceptions=exceptions,
                model=newest.get(name),
                run=by_run.get(name),
            )
        )
    return out
