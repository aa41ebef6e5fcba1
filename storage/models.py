"""The tables, as typed SQLAlchemy 2.0 models.

Market times (candle open time, event bar time, social sample time) are UTC
epoch milliseconds in ``BigInteger`` columns: compact, the same on SQLite and
PostgreSQL, and what ccxt speaks. Wall-clock bookkeeping (created_at, sent_at,
muted_until) uses :class:`UTCDateTime`, which always hands back aware UTC
datetimes, because SQLite stores DATETIME as naive text.

Uniqueness is part of the schema, not of the code: re-scoring a bar cannot
create a second event, re-importing a file cannot create a second candle, and
an alert cannot be queued twice for the same chat.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "Alert",
    "Base",
    "BookFeatures",
    "Candle",
    "Chat",
    "Cycle",
    "Delivery",
    "DeliveryStatus",
    "Event",
    "ModelRecord",
    "Severity",
    "SocialPoint",
    "StreamTrade",
    "SymbolMute",
    "ThresholdOverride",
    "TradeChunk",
    "UTCDateTime",
    "WatchlistEntry",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC datetimes only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


#: severities in increasing order, for "at least medium" comparisons
SEVERITY_RANK: dict[str, int] = {s.value: i for i, s in enumerate(Severity)}


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


intpk = Annotated[int, mapped_column(Integer, primary_key=True, autoincrement=True)]
ts_ms = Annotated[int, mapped_column(BigInteger)]
utc_ts = Annotated[datetime, mapped_column(UTCDateTime)]
name32 = Annotated[str, mapped_column(String(32))]
name64 = Annotated[str, mapped_column(String(64))]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, datetime: UTCDateTime}


class WatchlistEntry(Base):
    """A (exchange, symbol, timeframe) the loop fetches and scores.

    This table is the one source of truth for what is watched: the config's
    ``[[watchlist]]`` only seeds it (``storage.watchlist.seed_watchlist``).
    Removing a market keeps its row with ``enabled = False`` so that a later
    seeding does not bring it back; adding it again re-enables it.
    """

    __tablename__ = "watchlist"
    __table_args__ = (UniqueConstraint("exchange", "symbol", "timeframe", name="uq_watchlist_key"),)

    id: Mapped[intpk]
    exchange: Mapped[name32]
    symbol: Mapped[name64]
    timeframe: Mapped[str] = mapped_column(String(8))
    enabled: Mapped[bool] = mapped_column(default=True)
    added_by: Mapped[int | None] = mapped_column(BigInteger, default=None)
    source: Mapped[str | None] = mapped_column(String(16), default=None)  # config, chat, cli; None: not recorded
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)
    last_checked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    #: asset group: entries sharing it (and the timeframe) are one asset on several venues
    group_name: Mapped[str | None] = mapped_column(String(64), default=None)
    #: order-book levels per side to snapshot at each bar close (None: no snapshots)
    book_depth: Mapped[int | None] = mapped_column(Integer, default=None)

    def __repr__(self) -> str:
        return f"WatchlistEntry({self.exchange}:{self.symbol}:{self.timeframe})"


class Candle(Base):
    """One OHLCV bar; ``ts`` is its open time."""

    __tablename__ = "candles"

    exchange: Mapped[name32] = mapped_column(primary_key=True)
    symbol: Mapped[name64] = mapped_column(primary_key=True)
    timeframe: Mapped[str] = mapped_column(String(8), primary_key=True)
    ts: Mapped[ts_ms] = mapped_column(primary_key=True)
    open: Mapped[float] = mapped_column(Float)
    high: Mapped[float] = mapped_column(Float)
    low: Mapped[float] = mapped_column(Float)
    close: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)

    def __repr__(self) -> str:
        return f"Candle({self.exchange}:{self.symbol}:{self.timeframe} @ {self.ts})"


class SocialPoint(Base):
    """One sample of a social metric (mentions, posts) for a symbol."""

    __tablename__ = "social_points"

    source: Mapped[name32] = mapped_column(primary_key=True)
    symbol: Mapped[name64] = mapped_column(primary_key=True)
    metric: Mapped[name32] = mapped_column(primary_key=True)
    ts: Mapped[ts_ms] = mapped_column(primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class Alert(Base):
    """One message's worth of events: a symbol and bar, every detector that fired.

    The outbox unit. Deliveries point here so that three detectors firing on
    the same bar make one message, not three.
    """

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("exchange", "symbol", "timeframe", "bar_ts", name="uq_alert_bar"),)

    id: Mapped[intpk]
    exchange: Mapped[name32]
    symbol: Mapped[name64]
    timeframe: Mapped[str] = mapped_column(String(8))
    bar_ts: Mapped[ts_ms]
    severity: Mapped[str] = mapped_column(String(8), default=Severity.LOW.value)
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)

    events: Mapped[list[Event]] = relationship(back_populates="alert", order_by="Event.id")
    deliveries: Mapped[list[Delivery]] = relationship(back_populates="alert")


class Event(Base):
    """An anomaly a detector found on a bar. Stored before anyone is alerted."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("exchange", "symbol", "timeframe", "detector", "bar_ts", name="uq_event_bar_detector"),
        Index("ix_events_symbol_bar", "symbol", "bar_ts"),
    )

    id: Mapped[intpk]
    exchange: Mapped[name32]
    symbol: Mapped[name64]
    timeframe: Mapped[str] = mapped_column(String(8))
    detector: Mapped[name64]
    bar_ts: Mapped[ts_ms]
    score: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    severity: Mapped[str] = mapped_column(String(8), default=Severity.LOW.value)
    kind: Mapped[str] = mapped_column(String(32), default="anomaly")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    model_version: Mapped[str | None] = mapped_column(String(64), default=None)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id", ondelete="SET NULL"), default=None, index=True)
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)

    alert: Mapped[Alert | None] = relationship(back_populates="events")

    def __repr__(self) -> str:
        return (
            f"Event({self.detector} {self.exchange}:{self.symbol}:{self.timeframe} "
            f"@ {self.bar_ts} score={self.score:.3g})"
        )


class ThresholdOverride(Base):
    """A threshold or on/off switch set from chat or CLI.

    Empty string / zero mean "any": ``symbol=''`` applies to every symbol and
    ``chat_id=0`` to every chat. (NULLs would make the unique key useless,
    since SQL never treats two NULLs as equal.)
    """

    __tablename__ = "threshold_overrides"
    __table_args__ = (UniqueConstraint("chat_id", "symbol", "detector", name="uq_override_scope"),)

    id: Mapped[intpk]
    chat_id: Mapped[int] = mapped_column(BigInteger, default=0)
    symbol: Mapped[str] = mapped_column(String(64), default="")
    detector: Mapped[str] = mapped_column(String(64), default="")
    value: Mapped[float | None] = mapped_column(Float, default=None)
    enabled: Mapped[bool | None] = mapped_column(default=None)
    updated_at: Mapped[utc_ts] = mapped_column(default=utcnow, onupdate=utcnow)


class Chat(Base):
    """A Telegram chat the bot talks to."""

    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    title: Mapped[str | None] = mapped_column(String(256), default=None)
    role: Mapped[str] = mapped_column(String(16), default="member")
    muted_until: Mapped[datetime | None] = mapped_column(default=None)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)


class Delivery(Base):
    """The outbox: one row per (alert, channel, chat), sent exactly once."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("alert_id", "channel", "chat_id", name="uq_delivery_target"),
        Index("ix_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_deliveries_chart_status_next", "chart_status", "chart_next_attempt_at"),
    )

    id: Mapped[intpk]
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16), default="telegram")
    chat_id: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)
    # The chart follows the text as its own step (None: no chart for this delivery, e.g. rows
    # sent before charts were split from the text); same statuses as ``status``.
    chart_status: Mapped[str | None] = mapped_column(String(16), default=None)
    chart_attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    chart_next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    chart_message_id: Mapped[int | None] = mapped_column(BigInteger, default=None)

    alert: Mapped[Alert] = relationship(back_populates="deliveries")


class ModelRecord(Base):
    """A trained model file and what it was trained on."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("detector", "scope", "version", name="uq_model_version"),)

    id: Mapped[intpk]
    detector: Mapped[name64]
    scope: Mapped[str] = mapped_column(String(128), default="shared")
    version: Mapped[int]
    path: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    train_start: Mapped[int | None] = mapped_column(BigInteger, default=None)
    train_end: Mapped[int | None] = mapped_column(BigInteger, default=None)
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[utc_ts] = mapped_column(default=utcnow)


class Cycle(Base):
    """One run of the scheduler's fetch-score-alert job, for /status and metrics."""

    __tablename__ = "cycles"

    id: Mapped[intpk]
    timeframe: Mapped[str] = mapped_column(String(8))
    # Bars whose close is <= until_ms were scored by this cycle. Set only when
    # the cycle finished, so a crashed cycle's bars are scored again next time.
    until_ms: Mapped[int | None] = mapped_column(BigInteger, default=None)
    started_at: Mapped[utc_ts] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    symbols: Mapped[int] = mapped_column(default=0)
    candles_added: Mapped[int] = mapped_column(default=0)
    events: Mapped[int] = mapped_column(default=0)
    errors: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)


class BookFeatures(Base):
    """The order-book numbers of one market at one bar close (``ts``: the bar's open time).

    Only the reduced features are kept, never the book (``feeds.orderbook``).
    """

    __tablename__ = "book_features"

    exchange: Mapped[name32] = mapped_column(primary_key=True)
    symbol: Mapped[name64] = mapped_column(primary_key=True)
    ts: Mapped[ts_ms] = mapped_column(primary_key=True)
    spread_bps: Mapped[float | None] = mapped_column(Float, default=None)
    imbalance_1pct: Mapped[float | None] = mapped_column(Float, default=None)
    imbalance_5pct: Mapped[float | None] = mapped_column(Float, default=None)
    depth_1pct: Mapped[float | None] = mapped_column(Float, default=None)


class SymbolMute(Base):
    """A chat has muted one symbol until a time (the alert's "mute 1 h" button)."""

    __tablename__ = "symbol_mutes"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    symbol: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[utc_ts]


class TradeChunk(Base):
    """One closed chunk of a live trade stream: La Morgia counts and the pump score (issue 18).

    ``ts`` is the chunk's start; ``chunk_s`` its length. Kept for ``streams.keep_chunks_days``;
    the stream alerts' charts (price and rush orders of the last minutes) read these rows.
    """

    __tablename__ = "trade_chunks"

    exchange: Mapped[name32] = mapped_column(primary_key=True)
    symbol: Mapped[name64] = mapped_column(primary_key=True)
    chunk_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[ts_ms] = mapped_column(primary_key=True)
    rush: Mapped[float] = mapped_column(Float)
    trades: Mapped[float] = mapped_column(Float)
    volume: Mapped[float] = mapped_column(Float)
    price: Mapped[float] = mapped_column(Float)
    price_max: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float, default=None)


class StreamTrade(Base):
    """A raw streamed trade, kept only for ``streams.keep_raw_minutes`` (0 keeps none)."""

    __tablename__ = "stream_trades"
    __table_args__ = (Index("ix_stream_trades_ts", "ts"),)

    exchange: Mapped[name32] = mapped_column(primary_key=True)
    symbol: Mapped[name64] = mapped_column(primary_key=True)
    trade_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[ts_ms]
    price: Mapped[float] = mapped_column(Float)
    amount: Mapped[float] = mapped_column(Float)
    is_buy: Mapped[bool]
