"""Threshold overrides and detector switches set from chat or CLI.

Rows are global (``chat_id=0``): thresholds are a property of the
surveillance, not of who reads it. A row may name a symbol, a detector, or
both ('' = any). :func:`resolve_override` is the one place that decides which
row wins, in this order:

1. this symbol and this detector;
2. any symbol, this detector;
3. this symbol, any detector;
4. any symbol, any detector.

A detector-wide row beats a symbol-wide one because a threshold only means
something on one detector's scale. The first row that sets a value decides it
(threshold and on/off switch independently). The detector pool applies it when
scoring and the outbox again when queueing, so a change made while a cycle
runs still holds. It is pure, so callers load the rows once and resolve in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ThresholdOverride

__all__ = [
    "PRECEDENCE",
    "Resolved",
    "clear_threshold",
    "list_overrides",
    "resolve_override",
    "set_detector_enabled",
    "set_threshold",
]


#: which (symbol, detector) row wins, most specific first ('' = any); see the module docstring
PRECEDENCE: tuple[tuple[bool, bool], ...] = ((True, True), (False, True), (True, False), (False, False))


@dataclass(frozen=True)
class Resolved:
    threshold: float | None
    enabled: bool

    def admits(self, score: float) -> bool:
        """Whether an alarm with ``score`` survives: switched on, and above the override if one is set.

        Strictly above, as :func:`detectors.alarms.fires` compares.
        """
        return self.enabled and (self.threshold is None or score > self.threshold)


def _row(session: Session, symbol: str, detector: str) -> ThresholdOverride:
    row = session.scalar(
        select(ThresholdOverride).where(
            ThresholdOverride.chat_id == 0,
            ThresholdOverride.symbol == symbol,
            ThresholdOverride.detector == detector,
        )
    )
    if row is None:
        row = ThresholdOverride(chat_id=0, symbol=symbol, detector=detector)
        session.add(row)
    return row


def set_threshold(session: Session, symbol: str, detector: str, value: float | None) -> ThresholdOverride:
    """Set (or with None clear) the threshold for ``symbol``/``detector`` ('' = any)."""
    row = _row(session, symbol, detector)
    row.value = value
    session.flush()
    return row


def clear_threshold(session: Session, symbol: str, detector: str) -> bool:
    """Remove the threshold override for ``symbol``/``detector``; returns whether there was one.

    A row left with neither a threshold nor a switch is deleted.
    """
    row = session.scalar(
        select(ThresholdOverride).where(
            ThresholdOverride.chat_id == 0,
            ThresholdOverride.symbol == symbol,
            ThresholdOverride.detector == detector,
        )
    )
    if row is None or row.value is None:
        return False
    if row.enabled is None:
        session.delete(row)
    else:
        row.value = None
    session.flush()
    return True


def set_detector_enabled(session: Session, symbol: str, detector: str, enabled: bool) -> ThresholdOverride:
    row = _row(session, symbol, detector)
    row.enabled = enabled
    session.flush()
    return row


def list_overrides(session: Session, *, symbol: str | None = None) -> list[ThresholdOverride]:
    q = select(ThresholdOverride).where(ThresholdOverride.chat_id == 0)
    if symbol is not None:
        q = q.where(ThresholdOverride.symbol.in_([symbol, ""]))
    return list(session.scalars(q.order_by(ThresholdOverride.symbol, ThresholdOverride.detector)))


def resolve_override(rows: Sequence[ThresholdOverride], symbol: str, detector: str) -> Resolved:
    """The threshold and on/off switch that apply to ``symbol``/``detector`` (order: ``PRECEDENCE``)."""
    keys = [(symbol if by_symbol else "", detector if by_detector else "") for by_symbol, by_detector in PRECEDENCE]
    rank = {key: i for i, key in reversed(list(enumerate(keys)))}
    ordered = sorted((r for r in rows if (r.symbol, r.detector) in rank), key=lambda r: rank[(r.symbol, r.detector)])
    threshold = next((r.value for r in ordered if r.value is not None), None)
    enabled = next((r.enabled for r in ordered if r.enabled is not None), True)
    return Resolved(threshold=threshold, enabled=bool(enabled))
