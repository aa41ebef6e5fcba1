from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from storage.events import NewEvent, events_frame, insert_events, list_events


def _event(bar: int, detector: str = "zscore", symbol: str = "BTC/USDT", score: float = 5.0) -> NewEvent:
    return NewEvent("binance", symbol, "1h", detector, bar, score, 4.0, details={"why": "test"})


def test_insert_events_returns_only_new_ones(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        first = insert_events(s, [_event(1000), _event(2000)])
    assert [e.bar_ts for e in first] == [1000, 2000]
    with session_factory.begin() as s:
        again = insert_events(s, [_event(2000), _event(3000), _event(2000, detector="lstm_forecaster")])
    assert sorted((e.bar_ts, e.detector) for e in again) == [(2000, "lstm_forecaster"), (3000, "zscore")]
    with session_factory() as s:
        assert len(list_events(s)) == 4


def test_list_events_filters_and_orders(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as s:
        insert_events(s, [_event(t, symbol=sym, score=t / 1000) for t in (1000, 2000, 3000) for sym in ("A/B", "C/D")])
    with session_factory() as s:
        newest = list_events(s, symbol="A/B", limit=2)
        assert [e.bar_ts for e in newest] == [3000, 2000]
        window = list_events(s, since_ms=2000, until_ms=3000, newest_first=False)
        assert [e.bar_ts for e in window] == [2000, 2000]
        strong = list_events(s, min_score=3.0)
        assert {e.bar_ts for e in strong} == {3000}
        frame = events_frame(list_events(s, symbol="C/D"))
    assert list(frame["timestamp"]) == [pd.Timestamp(t, unit="ms", tz="UTC") for t in (1000, 2000, 3000)]
    assert list(frame["score"]) == [1.0, 2.0, 3.0]
