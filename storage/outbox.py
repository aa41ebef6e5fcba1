"""The alert outbox: events become alerts, alerts become deliveries, deliveries go out once.

Flow: the runtime stores events (:func:`storage.events.insert_events`) and
hands the new ones to :func:`queue_alerts`, in the same transaction. That
groups them per (exchange, symbol, timeframe, bar) into one :class:`Alert`
(three detectors on one bar make one message) and writes one ``pending``
:class:`Delivery` per target. Only then does anything touch the network:
the dispatcher (``bot/alerts/dispatcher.py``) claims due rows, sends, and records
the outcome. A crash can therefore lose no alert: whatever was queued is in
the database.

Exactly-once and the crash window
---------------------------------
Telegram has no idempotency key, so no client can make "send" and "record
that it was sent" one atomic step. The dispatcher narrows the window:
:func:`claim_due` commits ``status='sending'`` (attempts + 1, and a lease in
``next_attempt_at``) *before* the HTTP call, and :func:`mark_sent` commits
right after the answer. A row found in ``sending`` with an expired lease was
being sent when the process died: the request may or may not have reached
Telegram. :func:`recover_abandoned` decides, by policy:

* ``resend=True`` (the default, at-least-once): back to ``pending``. A crash
  in the few milliseconds between Telegram accepting and our commit can
  duplicate one message; an alert is never lost. For surveillance a
  duplicate is cheaper than a missed pump.
* ``resend=False`` (at-most-once): the row ends ``failed`` with
  ``last_error='outcome unknown after restart'``; never a duplicate, maybe a
  lost alert.

Every other path is exactly-once: rows in ``pending`` were never sent, rows
in ``sent``/``failed`` are never touched again, and the unique key
(alert, channel, chat) stops the same alert being queued twice.

The chart is a second step of the same delivery: when the text is recorded as
sent, ``chart_status`` becomes ``pending`` and the chart goes through the same
claim / send / record cycle on its own columns (``chart_*``, ``part="chart"``),
with the same lease and the same at-least-once policy after a crash. A chart
can therefore never hold back its alert's text, and neither part is sent twice.

Functions take the session first and never commit (the dispatcher commits
each step in its own short transaction).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from storage.chats import chats_not_receiving
from storage.models import SEVERITY_RANK, Alert, Delivery, DeliveryStatus, Event, Severity
from storage.thresholds import list_overrides, resolve_override

__all__ = [
    "DEFAULT_LEASE",
    "claim_charts_due",
    "claim_due",
    "combine_severity",
    "delivery_counts",
    "mark_failed",
    "mark_retry",
    "mark_sent",
    "peek_due",
    "queue_alerts",
    "recover_abandoned",
]

log = logging.getLogger(__name__)

DEFAULT_LEASE = timedelta(minutes=5)
_RANK_SEVERITY = {v: k for k, v in SEVERITY_RANK.items()}


def combine_severity(events: Sequence[Event]) -> str:
    """One severity for a bar: the worst event's, raised to ``medium`` when two or more detectors agree.

    Each event's own severity comes from the one alarm rule (``detectors.alarms``);
    nothing here re-judges a score against its threshold.
    """
    if not events:
        return Severity.LOW.value
    rank = max(SEVERITY_RANK.get(e.severity, 0) for e in events)
    if len({e.detector for e in events}) >= 2:
        rank = max(rank, 1)
    return _RANK_SEVERITY[rank]


def _passes_overrides(session: Session, events: list[Event]) -> list[Event]:
    rows = list_overrides(session)
    if not rows:
        return events
    kept = []
    for e in events:
        if resolve_override(rows, e.symbol, e.detector).admits(e.score):
            kept.append(e)
    return kept


def _cooled(session: Session, events: list[Event], cooldown: timedelta) -> list[Event]:
    """Drop events that repeat an alerted (symbol, detector) within ``cooldown`` of bar time.

    Bar time rather than wall time, so a backfill after downtime is judged the
    way a live run would have judged it.
    """
    cool_ms = int(cooldown.total_seconds() * 1000)
    if cool_ms <= 0:
        return events
    kept: list[Event] = []
    last: dict[tuple[str, str, str, str], int | None] = {}
    for e in sorted(events, key=lambda ev: (ev.bar_ts, ev.id)):
        key = (e.exchange, e.symbol, e.timeframe, e.detector)
        if key not in last:
            last[key] = session.scalar(
                select(func.max(Event.bar_ts)).where(
                    Event.exchange == e.exchange,
                    Event.symbol == e.symbol,
                    Event.timeframe == e.timeframe,
                    Event.detector == e.detector,
                    Event.alert_id.is_not(None),
                    Event.bar_ts <= e.bar_ts,
                    Event.id != e.id,
                )
            )
        prev = last[key]
        if prev is not None and e.bar_ts - prev < cool_ms:
            log.info("cooldown: %s %s %s at %s (last alert at %s)", e.exchange, e.symbol, e.detector, e.bar_ts, prev)
            continue
        kept.append(e)
        last[key] = e.bar_ts
    return kept


def queue_alerts(
    session: Session,
    events: Sequence[Event],
    *,
    chat_ids: Iterable[int],
    channel: str = "telegram",
    cooldown: timedelta = timedelta(0),
    now: datetime,
    min_severity: str = Severity.LOW.value,
) -> list[Alert]:
    """Group new events into alerts and queue one delivery per target chat.

    Events already attached to an alert are ignored (re-queueing is a no-op).
    Events whose detector is switched off or whose score is under a
    threshold override, and events inside the cooldown of an earlier alert on
    the same (symbol, detector), stay stored but are not alerted. Inactive
    chats and chats that muted the chat or the symbol get no delivery, and
    neither does an alert below ``min_severity`` (it is still stored).

    Returns the alerts that got at least one new delivery, oldest bar first.
    """
    if not isinstance(cooldown, timedelta):
        raise TypeError(f"queue_alerts: cooldown must be a timedelta, got {cooldown!r}")
    if now.tzinfo is None:
        raise ValueError(f"queue_alerts: now must be timezone-aware UTC, got {now!r}")
    targets = list(dict.fromkeys(int(c) for c in chat_ids))
    fresh = [e for e in events if e.alert_id is None]
    fresh = _cooled(session, _passes_overrides(session, fresh), cooldown)
    groups: dict[tuple[str, str, str, int], list[Event]] = {}
    for e in fresh:
        groups.setdefault((e.exchange, e.symbol, e.timeframe, e.bar_ts), []).append(e)
    out: list[Alert] = []
    for (exchange, symbol, timeframe, bar_ts), group in sorted(groups.items(), key=lambda kv: kv[0][3]):
        alert = session.scalar(
            select(Alert).where(
                Alert.exchange == exchange, Alert.symbol == symbol, Alert.timeframe == timeframe, Alert.bar_ts == bar_ts
            )
        )
        if alert is None:
            alert = Alert(exchange=exchange, symbol=symbol, timeframe=timeframe, bar_ts=bar_ts, created_at=now)
            session.add(alert)
            session.flush()
        for e in group:
            e.alert_id = alert.id
        session.flush()
        alert.severity = combine_severity(list(session.scalars(select(Event).where(Event.alert_id == alert.id))))
        if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK.get(min_severity, 0):
            continue
        skip = chats_not_receiving(session, targets, symbol, now) if channel == "telegram" else set()
        existing = set(
            session.scalars(select(Delivery.chat_id).where(Delivery.alert_id == alert.id, Delivery.channel == channel))
        )
        added = 0
        for chat_id in targets:
            if chat_id in skip or chat_id in existing:
                continue
            session.add(Delivery(alert_id=alert.id, channel=channel, chat_id=chat_id, created_at=now))
            added += 1
        session.flush()
        if added:
            out.append(alert)
    return out


def _columns(part: str) -> tuple[Any, Any, Any]:
    """(status, attempts, next_attempt_at) columns of the delivery's ``text`` or ``chart`` step."""
    if part == "text":
        return Delivery.status, Delivery.attempts, Delivery.next_attempt_at
    if part == "chart":
        return Delivery.chart_status, Delivery.chart_attempts, Delivery.chart_next_attempt_at
    raise ValueError(f"part must be 'text' or 'chart', got {part!r}")


def recover_abandoned(session: Session, *, now: datetime, resend: bool = True) -> int:
    """Deal with texts and charts left in ``sending`` by a crash (lease expired); see the module docstring."""
    n = 0
    for part in ("text", "chart"):
        status, _attempts, next_at = _columns(part)
        stale = (status == DeliveryStatus.SENDING.value) & (next_at <= now)
        if resend:
            values = {status.key: DeliveryStatus.PENDING.value, next_at.key: now}
        else:
            values = {status.key: DeliveryStatus.FAILED.value, "last_error": f"{part} outcome unknown after restart"}
        recovered = int(session.execute(update(Delivery).where(stale).values(**values)).rowcount or 0)
        if recovered:
            log.warning(
                "outbox: %d %ss were mid-send at a crash; %s", recovered, part, "re-sending" if resend else "failed"
            )
        n += recovered
    return n


def _claim(
    session: Session, part: str, *, channels: Iterable[str], now: datetime, lease: timedelta, limit: int
) -> list[Delivery]:
    status, attempts, next_at = _columns(part)
    due = (
        select(Delivery.id)
        .where(
            status == DeliveryStatus.PENDING.value,
            Delivery.channel.in_(list(channels)),
            (next_at.is_(None)) | (next_at <= now),
        )
        .order_by(Delivery.id)
        .limit(limit)
    )
    if part == "chart":  # only once the text is out
        due = due.where(Delivery.status == DeliveryStatus.SENT.value)
    claimed = []
    for delivery_id in list(session.scalars(due)):
        res = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, status == DeliveryStatus.PENDING.value)
            .values({status: DeliveryStatus.SENDING.value, attempts: attempts + 1, next_at: now + lease})
        )
        if res.rowcount == 1:
            claimed.append(delivery_id)
    if not claimed:
        return []
    q = (
        select(Delivery)
        .where(Delivery.id.in_(claimed))
        .options(selectinload(Delivery.alert).selectinload(Alert.events))
        .order_by(Delivery.id)
        .execution_options(populate_existing=True)
    )
    return list(session.scalars(q))


def peek_due(session: Session, *, channels: Iterable[str], now: datetime, limit: int = 100) -> list[Delivery]:
    """Due ``pending`` text deliveries with their alert and events, without claiming them (to prepare ahead)."""
    q = (
        select(Delivery)
        .where(
            Delivery.status == DeliveryStatus.PENDING.value,
            Delivery.channel.in_(list(channels)),
            (Delivery.next_attempt_at.is_(None)) | (Delivery.next_attempt_at <= now),
        )
        .options(selectinload(Delivery.alert).selectinload(Alert.events))
        .order_by(Delivery.id)
        .limit(limit)
    )
    return list(session.scalars(q))


def claim_due(
    session: Session,
    *,
    channels: Iterable[str],
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
    limit: int = 50,
) -> list[Delivery]:
    """Move due ``pending`` rows to ``sending`` (attempts + 1) and return them with their alert and events.

    The update is conditional on the row still being pending, so two
    dispatchers on one database never claim the same row.
    """
    return _claim(session, "text", channels=channels, now=now, lease=lease, limit=limit)


def claim_charts_due(
    session: Session,
    *,
    channels: Iterable[str],
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
    limit: int = 50,
) -> list[Delivery]:
    """The same for charts: rows whose text is sent and whose chart is due move to chart ``sending``."""
    return _claim(session, "chart", channels=channels, now=now, lease=lease, limit=limit)


def mark_sent(
    session: Session,
    delivery_id: int,
    *,
    now: datetime,
    message_id: int | None = None,
    chart: bool = False,
    part: str = "text",
) -> None:
    """Record a sent text (``chart=True``: its chart is due next) or, with ``part="chart"``, a sent chart.

    An error from an earlier attempt no longer describes the delivery, so it goes.
    """
    if part == "chart":
        values: dict[str, object] = {
            "chart_status": DeliveryStatus.SENT.value,
            "chart_message_id": message_id,
            "chart_next_attempt_at": None,
            "last_error": None,
        }
    else:
        values = {"status": DeliveryStatus.SENT.value, "sent_at": now, "message_id": message_id}
        values.update(next_attempt_at=None, last_error=None)
        if chart:
            values.update(chart_status=DeliveryStatus.PENDING.value, chart_next_attempt_at=None)
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


def mark_retry(
    session: Session,
    delivery_id: int,
    *,
    error: str,
    next_attempt_at: datetime,
    count_attempt: bool = True,
    part: str = "text",
) -> None:
    """Back to ``pending`` until ``next_attempt_at``; a 429 does not count as an attempt."""
    status, attempts, next_at = _columns(part)
    values: dict[Any, object] = {
        status: DeliveryStatus.PENDING.value,
        Delivery.last_error: error[:2000],
        next_at: next_attempt_at,
    }
    if not count_attempt:
        values[attempts] = attempts - 1
    session.execute(update(Delivery).where(Delivery.id == delivery_id).values(values))


def mark_failed(session: Session, delivery_id: int, *, error: str, part: str = "text") -> None:
    status, _attempts, next_at = _columns(part)
    session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id)
        .values({status: DeliveryStatus.FAILED.value, Delivery.last_error: error[:2000], next_at: None})
    )


def delivery_counts(session: Session) -> dict[str, int]:
    """Number of deliveries per status."""
    rows = session.execute(select(Delivery.status, func.count()).group_by(Delivery.status))
    return {status: int(n) for status, n in rows}
