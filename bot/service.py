"""The service layer the CLI and the Telegram handlers share.

Handlers and CLI commands only parse input (``bot/inputs.py``), call one
method here and format the answer. Nothing here knows about Telegram or the
terminal. Database work is synchronous SQLAlchemy run in a worker thread
(``asyncio.to_thread``), so a slow query never stalls the bot's event loop.

Two collaborators are injected, which keeps this module free of ccxt and of
the backtest engine: ``validate_symbol(exchange, symbol) -> normalized``
(``feeds.exchange.ExchangeFeed.validate_symbol`` in production) and
``run_backtest_for_chat(symbol, strategy, period) -> (text, png)``.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.charts import events_for_chart, render_alert_chart
from bot.alerts.text import compose_alert
from core.config import Config
from core.errors import BotError, InputError
from core.timeframes import timeframe_to_ms
from storage.candles import load_candles
from storage.chats import ensure_chat, mute_symbol, set_chat_muted
from storage.cycles import cycle_stats_since, last_cycle
from storage.events import detectors_seen, list_events
from storage.model_records import active_model_versions
from storage.models import Alert, Cycle, Event, WatchlistEntry, utcnow
from storage.thresholds import list_overrides, resolve_override, set_detector_enabled, set_threshold
from storage.watchlist import add_watch, list_watch, remove_watch

__all__ = [
    "BacktestRunner",
    "BotService",
    "StatusReport",
    "SymbolValidator",
]

log = logging.getLogger(__name__)

SymbolValidator = Callable[[str, str], Awaitable[str]]
#: quotes that stand for the same dollar on different venues, tried in this order for a group member
QUOTE_EQUIVALENTS: dict[str, tuple[str, ...]] = {
    "USDT": ("USD", "USDC"),
    "USD": ("USDT", "USDC"),
    "USDC": ("USD", "USDT"),
}
BacktestRunner = Callable[[str, str | None, str | None], Any]
T = TypeVar("T")


def _config_group(cfg: Config, entry: WatchlistEntry) -> str | None:
    for e in cfg.watchlist:
        if (e.exchange, e.symbol, e.timeframe) == (entry.exchange, entry.symbol, entry.timeframe):
            return e.group
    return None


@dataclass(frozen=True)
class StatusReport:
    now: datetime
    last_cycle: Cycle | None
    cycles_24h: int
    errors_24h: int
    markets: list[dict[str, Any]] = field(default_factory=list)  # symbol, timeframe, last_ts, lag_s, last_error, group
    models: list[dict[str, Any]] = field(default_factory=list)  # detector, scope, version, created_at
    deliveries: dict[str, int] = field(default_factory=dict)
    #: per asset of a watched group: (on-chain source, metric, time of its newest stored value or None)
    onchain: dict[str, list[tuple[str, str, int | None]]] = field(default_factory=dict)


class BotService:
    """Watchlist, thresholds, detectors, events, charts, mutes and status, for chat and CLI alike."""

    def __init__(
        self,
        cfg: Config,
        session_factory: sessionmaker[Session],
        *,
        validate_symbol: SymbolValidator | None = None,
        run_backtest_for_chat: BacktestRunner | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.cfg = cfg
        self.session_factory = session_factory
        self.validate_symbol = validate_symbol
        self.run_backtest_for_chat = run_backtest_for_chat
        self.now = now

    # -- plumbing -------------------------------------------------------------------------
    async def _db(self, fn: Callable[[Session], T]) -> T:
        def run() -> T:
            with self.session_factory.begin() as session:
                return fn(session)

        return await asyncio.to_thread(run)

    @property
    def default_exchange(self) -> str:
        return next(iter(self.cfg.exchanges), "binance")

    @property
    def default_timeframe(self) -> str:
        return self.cfg.watchlist[0].timeframe if self.cfg.watchlist else "1h"

    def known_detectors(self, seen: Iterable[str] = ()) -> list[str]:
        names = set(self.cfg.detectors) | set(seen)
        try:  # the registry may list more (detectors helper); it is optional here
            from detectors.registry import available_detectors

            names |= set(available_detectors())
        except Exception:  # noqa: BLE001 - absent or broken registry just means "config names only"
            pass
        return sorted(names)

    def check_exchange(self, exchange: str | None) -> str:
        name = (exchange or self.default_exchange).strip().lower()
        if self.cfg.exchanges and name not in self.cfg.exchanges:
            known = ", ".join(sorted(self.cfg.exchanges))
            raise InputError(f"exchange {name!r} is not configured (configured: {known})")
        return name

    # -- watchlist --------------------------------------------------------------------------
    async def watch(
        self, symbol: str, timeframe: str | None = None, exchange: str | None = None, *, user_id: int | None = None
    ) -> tuple[WatchlistEntry, bool]:
        """Validate against the exchange's markets, then add. Raises BadSymbolError with suggestions."""
        ex = self.check_exchange(exchange)
        tf = timeframe or self.default_timeframe
        if self.validate_symbol is not None:
            symbol = await self.validate_symbol(ex, symbol)
        return await self._db(lambda s: add_watch(s, ex, symbol, tf, added_by=user_id))

    async def watch_group(
        self,
        symbol: str,
        exchanges: list[str],
        timeframe: str | None = None,
        *,
        group: str | None = None,
        user_id: int | None = None,
    ) -> list[tuple[WatchlistEntry, bool]]:
        """Watch one asset on several exchanges as an asset group (all or nothing).

        Each exchange's spelling is found by the validator, trying the quote first as given
        and then its equivalents (USDT, USD, USDC: ``BTC/USDT`` on kraken is ``BTC/USD``).
        An exchange that lists none of them stops the whole group with its name.
        """
        names = [self.check_exchange(e) for e in exchanges]
        tf = timeframe or self.default_timeframe
        name = group or symbol.partition("/")[0]
        resolved = [(ex, await self._group_symbol(ex, symbol)) for ex in names]

        def run(s: Session) -> list[tuple[WatchlistEntry, bool]]:
            return [add_watch(s, ex, sym, tf, added_by=user_id, group=name) for ex, sym in resolved]

        return await self._db(run)

    async def _group_symbol(self, exchange: str, symbol: str) -> str:
        if self.validate_symbol is None:
            return symbol
        base, _, quote = symbol.partition("/")
        tried = [quote] + [q for q in QUOTE_EQUIVALENTS.get(quote, ()) if q != quote]
        first_error: BotError | None = None
        for q in tried:
            try:
                return await self.validate_symbol(exchange, f"{base}/{q}")
            except BotError as err:  # BadSymbolError; kept to report the first one
                first_error = first_error or err
        raise InputError(
            f"{exchange} lists none of {', '.join(f'{base}/{q}' for q in tried)} ({first_error}); "
            "the group was not added"
        )

    def is_group_name(self, text: str) -> bool:
        """True when ``text`` names a ``[[groups]]`` entry of the config."""
        return text.strip().lower() in {g.group_name.lower() for g in self.cfg.groups}

    async def watch_named_group(self, name: str, *, user_id: int | None = None) -> list[tuple[WatchlistEntry, bool]]:
        """Watch (again) every market of a group defined in the config's ``[[groups]]``."""
        groups = {g.group_name.lower(): g for g in self.cfg.groups}
        group = groups.get(name.strip().lower())
        if group is None:
            known = ", ".join(sorted(g.group_name for g in self.cfg.groups)) or "none configured"
            raise InputError(f"no asset group named {name!r} (groups: {known})")

        def run(s: Session) -> list[tuple[WatchlistEntry, bool]]:
            return [
                add_watch(
                    s,
                    e["exchange"],
                    e["symbol"],
                    e["timeframe"],
                    added_by=user_id,
                    group=e["group"],
                    book_depth=e.get("book_depth"),
                )
                for e in group.entries()
            ]

        return await self._db(run)

    async def unwatch(self, symbol: str, timeframe: str | None = None, exchange: str | None = None) -> int:
        return await self._db(lambda s: remove_watch(s, symbol, timeframe=timeframe, exchange=exchange))

    async def watchlist(self) -> list[WatchlistEntry]:
        return await self._db(lambda s: list_watch(s))

    async def _entry_for(self, symbol: str) -> WatchlistEntry:
        entries = await self._db(lambda s: list_watch(s, symbol=symbol))
        if not entries:
            raise InputError(f"{symbol} is not on the watchlist (try /watch {symbol})")
        return entries[0]

    # -- thresholds and detectors ----------------------------------------------------------
    async def thresholds(self, symbol: str | None = None) -> list[tuple[str, str, float | None, bool | None]]:
        rows = await self._db(lambda s: list_overrides(s, symbol=symbol))
        return [(r.symbol or "*", r.detector or "*", r.value, r.enabled) for r in rows]

    async def set_threshold(self, symbol: str, detector: str, value: float) -> None:
        await self._db(lambda s: set_threshold(s, symbol, detector, value))

    async def detectors(self, symbol: str | None = None) -> list[tuple[str, bool, float | None]]:
        """(detector, enabled, threshold override) for ``symbol`` (or globally)."""

        def run(s: Session) -> tuple[list[Any], list[str]]:
            return list_overrides(s), detectors_seen(s)

        rows, seen = await self._db(run)
        out = []
        for name in self.known_detectors(seen):
            res = resolve_override(rows, symbol or "", name)
            out.append((name, res.enabled, res.threshold))
        return out

    async def set_detector(self, symbol: str, detector: str, enabled: bool) -> None:
        await self._db(lambda s: set_detector_enabled(s, symbol, detector, enabled))

    # -- events, charts, backtests -----------------------------------------------------------
    async def events(self, symbol: str | None = None, n: int = 10) -> list[Event]:
        return await self._db(lambda s: list_events(s, symbol=symbol, limit=n))

    async def chart(self, symbol: str, period: timedelta = timedelta(days=7), *, max_bars: int = 2000) -> bytes:
        """PNG of the stored candles of ``symbol`` over ``period`` with its events marked."""
        entry = await self._entry_for(symbol)
        end = int(self.now().timestamp() * 1000)
        start = end - int(period.total_seconds() * 1000)

        def run(s: Session) -> tuple[pd.DataFrame, list[Event]]:
            frame = load_candles(s, entry.exchange, entry.symbol, entry.timeframe, start_ms=start, limit=max_bars)
            evs = list_events(s, exchange=entry.exchange, symbol=symbol, timeframe=entry.timeframe, since_ms=start)
            return frame, evs

        frame, evs = await self._db(run)
        if frame.empty:
            raise InputError(f"no candles stored for {symbol} {entry.timeframe} in the last {period}")
        title = f"{entry.exchange}:{symbol} {entry.timeframe}"
        return await asyncio.to_thread(render_alert_chart, frame, events=events_for_chart(evs), title=title)

    async def backtest(self, symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes | None]:
        if self.run_backtest_for_chat is None:
            raise BotError("backtests are not available in this installation")
        await self._entry_for(symbol)
        result = await asyncio.to_thread(self.run_backtest_for_chat, symbol, strategy, period)
        if inspect.isawaitable(result):
            result = await result
        text, png = result
        return str(text), png

    # -- alerts (buttons) --------------------------------------------------------------------
    async def alert(self, alert_id: int) -> Alert:
        def run(s: Session) -> Alert:
            alert = s.get(Alert, alert_id)
            if alert is None:
                raise InputError(f"alert {alert_id} no longer exists")
            _ = list(alert.events)
            return alert

        return await self._db(run)

    async def alert_details(self, alert_id: int) -> str:
        alert = await self.alert(alert_id)
        bars = self.cfg.alerts.chart_bars

        def run(s: Session) -> pd.DataFrame:
            return load_candles(s, alert.exchange, alert.symbol, alert.timeframe, end_ms=alert.bar_ts + 1, limit=bars)

        frame = await self._db(run)
        lines = [compose_alert(alert, alert.events, frame)]
        for e in alert.events:
            if e.model_version:
                lines.append(f"{html.escape(e.detector)}: model {html.escape(e.model_version)}")
        return "\n".join(lines)

    # -- mutes ---------------------------------------------------------------------------------
    async def mute(self, chat_id: int, duration: timedelta) -> datetime:
        until = self.now() + duration
        await self._db(lambda s: set_chat_muted(s, chat_id, until))
        return until

    async def unmute(self, chat_id: int) -> None:
        await self._db(lambda s: set_chat_muted(s, chat_id, None))

    async def mute_symbol(self, chat_id: int, symbol: str, duration: timedelta) -> datetime:
        until = self.now() + duration
        await self._db(lambda s: mute_symbol(s, chat_id, symbol, until))
        return until

    async def set_chat_active(self, chat_id: int, active: bool) -> None:
        def run(s: Session) -> None:
            ensure_chat(s, chat_id).active = active

        await self._db(run)

    async def touch_chat(self, chat_id: int, title: str | None) -> None:
        """Record a chat we talk to (and revive one marked inactive after a 403)."""
        await self._db(lambda s: ensure_chat(s, chat_id, title=title, revive=True))

    # -- status ----------------------------------------------------------------------------------
    def _onchain_status(
        self, s: Session, markets: list[dict[str, Any]]
    ) -> dict[str, list[tuple[str, str, int | None]]]:
        """For every watched group's asset: each on-chain source and when it last delivered a value."""
        sources = [c for c in self.cfg.onchain if c.enabled]
        assets = sorted({m["symbol"].partition("/")[0] for m in markets if m.get("group")})
        if not sources or not assets:
            return {}
        from storage.metrics import latest_points

        latest = latest_points(s, [c.name for c in sources], assets)
        return {a: [(c.name, c.metric, latest.get((c.name, a))) for c in sources] for a in assets}

    async def status(self) -> StatusReport:
        now = self.now()

        def run(s: Session) -> StatusReport:
            from storage.candles import last_candle_ts
            from storage.outbox import delivery_counts

            last = last_cycle(s)
            n, errs = cycle_stats_since(s, now - timedelta(hours=24))
            markets = []
            for e in list_watch(s):
                ts = last_candle_ts(s, e.exchange, e.symbol, e.timeframe)
                lag = None
                if ts is not None:
                    lag = (now.timestamp() * 1000 - (ts + timeframe_to_ms(e.timeframe))) / 1000
                markets.append(
                    {
                        "exchange": e.exchange,
                        "symbol": e.symbol,
                        "timeframe": e.timeframe,
                        "last_ts": ts,
                        "lag_s": lag,
                        "last_error": e.last_error,
                        "group": e.group_name or _config_group(self.cfg, e),
                    }
                )
            models = active_model_versions(s)
            return StatusReport(
                now, last, n, errs, markets, models, delivery_counts(s), self._onchain_status(s, markets)
            )

        return await self._db(run)
