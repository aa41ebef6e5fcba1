"""queue_alerts: grouping per bar, one delivery per target, mutes, cooldown, overrides, idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from storage.chats import mark_chat_inactive, mute_symbol, set_chat_muted
from storage.models import Alert, Delivery, Event
from storage.outbox import combine_severity, queue_alerts
from storage.thresholds import set_detector_enabled, set_threshold
from tests.bot.telegram.helpers import H, candles, store

NOW = datetime(2024, 1, 10, tzinfo=UTC)


def _queue(factory: Any, events: list[Event], chats: list[int], **kw: Any) -> list[tuple[str, int, int]]:
    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id.in_([e.id for e in events]))))
        alerts = queue_alerts(s, evs, chat_ids=chats, channel="telegram", now=NOW, **kw)
        return [(a.symbol, a.bar_ts, len(a.deliveries)) for a in alerts]


def _deliveries(factory: Any) -> list[tuple[int, int]]:
    with factory() as s:
        return sorted((d.alert_id, d.chat_id) for d in s.scalars(select(Delivery)))


def test_queue_alerts_groups_detectors_on_one_bar_into_one_alert(session_factory: Any) -> None:
    factory = session_factory
    frame = candles(48)
    events = store(factory, "BTC/USDT", frame, [(40, "zscore", 5.0), (40, "pump_dump", 9.0), (44, "zscore", 4.5)])
    queued = _queue(factory, events, [1, 2])
    assert [(sym, n) for sym, _, n in queued] == [("BTC/USDT", 2), ("BTC/USDT", 2)]
    with factory() as s:
        first = s.scalars(select(Alert).order_by(Alert.bar_ts)).first()
        assert sorted(e.detector for e in first.events) == ["pump_dump", "zscore"]
        assert first.severity == "medium"  # two detectors agree; 9 / 4 is under the 3x of "high"
    assert len(_deliveries(factory)) == 4


def test_queue_alerts_twice_queues_nothing_new(session_factory: Any) -> None:
    factory = session_factory
    events = store(factory, "BTC/USDT", candles(48), [(40, "zscore", 5.0)])
    assert len(_queue(factory, events, [1])) == 1
    assert _queue(factory, events, [1]) == []
    assert len(_deliveries(factory)) == 1


def test_queue_alerts_skips_muted_and_inactive_chats(session_factory: Any) -> None:
    factory = session_factory
    events = store(factory, "BTC/USDT", candles(48), [(40, "zscore", 5.0)])
    with factory.begin() as s:
        set_chat_muted(s, 2, NOW + timedelta(hours=1))
        mute_symbol(s, 3, "BTC/USDT", NOW + timedelta(hours=1))
        mute_symbol(s, 4, "ETH/USDT", NOW + timedelta(hours=1))  # other symbol: still gets it
        mark_chat_inactive(s, 5)
        set_chat_muted(s, 6, NOW - timedelta(minutes=1))  # expired mute
    _queue(factory, events, [1, 2, 3, 4, 5, 6])
    assert [chat for _, chat in _deliveries(factory)] == [1, 4, 6]


def test_queue_alerts_cooldown_per_symbol_and_detector(session_factory: Any) -> None:
    factory = session_factory
    fired = [(10, "zscore", 5.0), (11, "zscore", 5.0), (11, "pump_dump", 5.0), (13, "zscore", 5.0)]
    events = store(factory, "BTC/USDT", candles(48), fired)
    queued = _queue(factory, events, [1], cooldown=timedelta(hours=2, minutes=30))
    frame0 = int(candles(48).index[0].value // 1_000_000)
    # bar 11 zscore is inside the cooldown of bar 10 zscore; pump_dump has its own; bar 13 is 3 h later
    assert [(bar - frame0) // H for _, bar, _ in queued] == [10, 11, 13]
    with factory() as s:
        alert11 = s.scalar(select(Alert).where(Alert.bar_ts == frame0 + 11 * H))
        assert [e.detector for e in alert11.events] == ["pump_dump"]


def test_queue_alerts_honours_threshold_overrides_and_switches(session_factory: Any) -> None:
    factory = session_factory
    events = store(factory, "BTC/USDT", candles(48), [(20, "zscore", 5.0), (21, "pump_dump", 9.0), (22, "zscore", 7.0)])
    with factory.begin() as s:
        set_threshold(s, "BTC/USDT", "zscore", 6.0)
        set_detector_enabled(s, "", "pump_dump", False)
    queued = _queue(factory, events, [1])
    assert len(queued) == 1  # only the zscore event above the override


def test_combine_severity_is_the_worst_event_raised_by_agreement() -> None:
    one = [Event(detector="a", score=5.0, threshold=4.0, severity="low")]
    two = one + [Event(detector="b", score=5.0, threshold=4.0, severity="low")]
    high = [Event(detector="a", score=13.0, threshold=4.0, severity="high")]
    # the events' own severities decide: a score is never re-judged against its threshold here
    judged = [Event(detector="a", score=8.0, threshold=4.0, severity="low")]
    assert [combine_severity(x) for x in (one, two, high, judged, [])] == ["low", "medium", "high", "low", "low"]


def test_queue_alerts_below_min_severity_are_stored_but_not_delivered(session_factory: Any) -> None:
    factory = session_factory
    events = store(factory, "BTC/USDT", candles(48), [(20, "zscore", 5.0), (30, "zscore", 13.0)])
    queued = _queue(factory, events, [1], min_severity="high")
    assert len(queued) == 1  # only the 13 / 4 one is high
    with factory() as s:
        assert len(list(s.scalars(select(Alert)))) == 2
