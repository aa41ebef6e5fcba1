"""Threshold overrides and detector switches set from chat or CLI.

Rows are global (``chat_id=0``): thresholds are a property of the
surveillance, not of who reads it. A row may name a symbol, a detector, or
both; the most specific row wins (symbol+detector, then symbol, then
detector). :func:`resolve_override` is pure, so the outbox loads the rows
once per batch and resolves in memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import ThresholdOverride

__all__ = ["Resolved", "list_overrides", "resolve_override", "set_detector_enabled", "set_threshold"]


@dataclass(frozen=True)
class Resolved:
    threshold: float | None
    enabled: bool


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
    """The threshold and on/off switch that apply to ``symbol``/``detector``."""
    rank = {(symbol, detector): 0, (symbol, ""): 1, ("", detector): 2, ("", ""): 3}
    ordered = sorted((r for r in rows if (r.symbol, r.detector) in rank), key=lambda r: rank[(r.symbol, r.detector)])
    threshold = next((r.value for r in ordered if r.value is not None), None)
    enabled = next((r.enabled for r in ordered if r.enabled is not None), True)
    return Resolved(threshold=threshold, enabled=bool(enabled))
