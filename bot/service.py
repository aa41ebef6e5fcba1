"""The service layer the CLI and the Telegram handlers share.

Handlers and CLI commands only parse input (``bot/inputs.py``), call one
method here and format the answer. Nothing here knows about Telegram or the
terminal. Database work is synchronous SQLAlchemy run in a worker thread
(``asyncio.to_thread``), so a slow query never stalls the bot's event loop.

Collaborators are injected (by ``bot.runtime.compose``), which keeps this
module free of ccxt, of the backtest engine and of the runtime's internals:
``validate_symbol(exchange, symbol) -> normalized`` (``feeds.pool.FeedPool``
in production), ``run_backtest_for_chat(symbol, strategy, period) -> (text, png)``
and ``backfill(exchange, symbol, timeframe)`` (history for a newly watched
market). Whoever follows the watchlist (the scheduler) registers with
:meth:`BotService.on_watchlist_change` and hears of every change made here.
"""

from __future__ import annotations

import asyncio
import html
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from bot.alerts.charts import events_for_chart, render_alert_chart
from bot.alerts.text import compose_alert
from bot.reports import DetectorReport, DetectorRun, DetectorStatus, StatusReport, detector_statuses
from core.config import Config
from core.errors import BadSymbolError, BotError, InputError
from core.timeframes import timeframe_to_ms
from storage.candles import load_candles
from storage.chats import ensure_chat, mute_symbol, set_chat_muted, unmute_symbol
from storage.cycles import cycle_stats_since, last_cycle
from storage.events import detectors_seen, list_events
from storage.model_records import active_model_versions
from storage.models import Alert, Event, WatchlistEntry, utcnow
from storage.thresholds import (
    clear_threshold,
    list_overrides,
    set_detector_enabled,
    set_threshold,
)
from storage.watchlist import add_watch, list_watch, remove_watch

__all__ = [
    "BacktestRunner",
    "BotService",
    "DetectorReport",
    "DetectorRun",
    "DetectorStatus",
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
#: ``(exchange, symbol, timeframe) -> result with .bars`` (``bot.runtime.backfill.Backfiller``)
Backfill = Callable[[str, str, str], Awaitable[Any]]
T = TypeVar("T")


def _span(period: timedelta) -> str:
    hours = period.total_seconds() / 3600
    return f"{hours / 24:g} days" if hours >= 24 else f"{hours:g} hours"


def _config_group(cfg: Config, entry: WatchlistEntry) -> str | None:
    for e in cfg.watchlist:
        if (e.exchange, e.symbol, e.timeframe) == (entry.exchange, entry.symbol, entry.timeframe):
            return e.group
    return None


class BotService:
    """Watchlist, thresholds, detectors, events, charts, mutes and status, for chat and CLI alike."""

    def __init__(
        self,
        cfg: Config,
        session_factory: sessionmaker[Session],
        *,
        validate_symbol: SymbolValidator | None = None,
        validate_timeframe: SymbolValidator | None = None,
        run_backtest_for_chat: BacktestRunner | None = None,
        backfill: Backfill | None = None,
        view: Any = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.cfg = cfg
        self.session_factory = session_factory
        self.validate_symbol = validate_symbol
        self.validate_timeframe = validate_timeframe
        self.run_backtest_for_chat = run_backtest_for_chat
        self._backfill = backfill
        self.view = view  # bot.runtime.state.SystemView: what runs in this process (None: the loop is elsewhere)
        self.now = now
        self._watch_listeners: list[Callable[[], None]] = []

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
    def on_watchlist_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after every watch or unwatch that changed the table (the scheduler follows it)."""
        self._watch_listeners.append(listener)

    def _watchlist_changed(self) -> None:
        for listener in self._watch_listeners:
            try:
                listener()
            except Exception:  # a listener's bug must not turn a done change into an error reply
                log.exception("watchlist listener %r failed", listener)

    async def watch(
        self,
        symbol: str,
        timeframe: str | None = None,
        exchange: str | None = None,
        *,
        user_id: int | None = None,
        source: str = "chat",
    ) -> tuple[WatchlistEntry, bool]:
        """Validate against the exchange's markets, then add. Raises BadSymbolError with suggestions."""
        ex = self.check_exchange(exchange)
        tf = timeframe or self.default_timeframe
        if self.validate_symbol is not None:
            symbol = await self.validate_symbol(ex, symbol)
        if self.validate_timeframe is not None:
            await self.validate_timeframe(ex, tf)
        entry, created = await self._db(lambda s: add_watch(s, ex, symbol, tf, added_by=user_id, source=source))
        if created:
            self._watchlist_changed()
        return entry, created

    async def watch_group(
        self,
        symbol: str,
        exchanges: list[str],
        timeframe: str | None = None,
        *,
        group: str | None = None,
        user_id: int | None = None,
        source: str = "chat",
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
            return [add_watch(s, ex, sym, tf, added_by=user_id, group=name, source=source) for ex, sym in resolved]

        return self._changed_if_new(await self._db(run))

    def _changed_if_new(self, added: list[tuple[WatchlistEntry, bool]]) -> list[tuple[WatchlistEntry, bool]]:
        if any(created for _entry, created in added):
            self._watchlist_changed()
        return added

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

    async def watch_named_group(
        self, name: str, *, user_id: int | None = None, source: str = "chat"
    ) -> list[tuple[WatchlistEntry, bool]]:
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
                    source=source,
                )
                for e in group.entries()
            ]

        return self._changed_if_new(await self._db(run))

    async def unwatch(self, symbol: str, timeframe: str | None = None, exchange: str | None = None) -> int:
        n = await self._db(lambda s: remove_watch(s, symbol, timeframe=timeframe, exchange=exchange))
        if n:
            self._watchlist_changed()
        return n

    @property
    def can_backfill(self) -> bool:
        return self._backfill is not None

    async def backfill(self, entry: WatchlistEntry) -> int:
        """Fetch a watched market's recent history now; returns the bars stored for it."""
        if self._backfill is None:
            raise BotError("history is fetched by the main job (vigil run); it is not running here")
        result = await self._backfill(entry.exchange, entry.symbol, entry.timeframe)
        return int(result.bars)

    async def watchlist(self) -> list[WatchlistEntry]:
        return await self._db(lambda s: list_watch(s))

    async def _entry_for(self, symbol: str, *, removed_ok: bool = False) -> WatchlistEntry:
        """The watchlist entry of ``symbol``; with ``removed_ok`` a removed one too (its data is still stored)."""

        def run(s: Session) -> list[WatchlistEntry]:
            entries = list_watch(s, symbol=symbol)
            return entries or (list_watch(s, symbol=symbol, enabled_only=False) if removed_ok else [])

        entries = await self._db(run)
        if not entries:
            raise InputError(f"{symbol} is not on the watchlist (try /watch {symbol})")
        return entries[0]

    # -- thresholds and detectors ----------------------------------------------------------
    async def thresholds(self, symbol: str | None = None) -> list[tuple[str, str, float | None, bool | None]]:
        rows = await self._db(lambda s: list_overrides(s, symbol=symbol))
        return [(r.symbol or "*", r.detector or "*", r.value, r.enabled) for r in rows]

    async def check_market(self, symbol: str) -> None:
        """A threshold or switch names a market that is watched or at least listed ('' = every symbol is fine)."""
        if not symbol or await self._db(lambda s: bool(list_watch(s, symbol=symbol))):
            return
        exchange = self.default_exchange
        if self.validate_symbol is not None:
            try:
                await self.validate_symbol(exchange, symbol)
                return
            except BadSymbolError:
                pass
            raise InputError(f"{symbol} is neither on the watchlist nor listed on {exchange}")
        raise InputError(f"{symbol} is not on the watchlist (try /watch {symbol})")

    async def set_threshold(self, symbol: str, detector: str, value: float) -> None:
        await self.check_market(symbol)
        await self._db(lambda s: set_threshold(s, symbol, detector, value))

    async def clear_threshold(self, symbol: str, detector: str) -> bool:
        """Remove a threshold override; returns whether there was one."""
        return await self._db(lambda s: clear_threshold(s, symbol, detector))

    async def detectors(self, symbol: str | None = None, chat_id: int | None = None) -> DetectorReport:
        """Each detector's real state for ``symbol`` (every symbol when None) and, with ``chat_id``, this chat."""
        from storage.chats import chat_mutes

        now = self.now()

        def run(s: Session) -> tuple[list[Any], list[str], list[dict[str, Any]], Any]:
            mutes = chat_mutes(s, chat_id, now) if chat_id is not None else (None, {})
            return list_overrides(s), detectors_seen(s), active_model_versions(s), mutes

        rows, seen, models, (muted, symbols_muted) = await self._db(run)
        runs = self.view.detector_runs() if self.view is not None else None
        statuses = detector_statuses(self.cfg.detectors_in_use(), rows, seen, models, runs, symbol)
        available = [n for n in self.known_detectors() if n not in {d.name for d in statuses}]
        return DetectorReport(statuses, available, self.view is not None, muted, symbols_muted)

    def runnable_detectors(self) -> list[str]:
        """Detectors enabled in the config: the only ones a chat switch can turn on."""
        return sorted(n for n, dc in self.cfg.detectors_in_use().items() if dc.enabled)

    async def set_detector(self, symbol: str, detector: str, enabled: bool) -> None:
        await self.check_market(symbol)
        await self._db(lambda s: set_detector_enabled(s, symbol, detector, enabled))

    # -- events, charts, backtests -----------------------------------------------------------
    async def events(self, symbol: str | None = None, n: int = 10) -> list[Event]:
        return await self._db(lambda s: list_events(s, symbol=symbol, limit=n))

    async def chart(self, symbol: str, period: timedelta = timedelta(days=7), *, max_bars: int = 2000) -> bytes:
        """PNG of the stored candles of watched ``symbol`` over ``period`` with its events marked."""
        png, _timeframe = await self.chart_with_timeframe(symbol, period, max_bars=max_bars)
        return png

    async def chart_with_timeframe(
        self,
        symbol: str,
        period: timedelta = timedelta(days=7),
        *,
        exchange: str | None = None,
        timeframe: str | None = None,
        max_bars: int = 2000,
    ) -> tuple[bytes, str]:
        """The chart and its timeframe; ``exchange`` and ``timeframe`` name a series watched or not (alerts)."""
        if exchange is None or timeframe is None:
            entry = await self._entry_for(symbol)
            exchange, timeframe = entry.exchange, entry.timeframe
        ex, tf = exchange, timeframe
        end = int(self.now().timestamp() * 1000)
        start = end - int(period.total_seconds() * 1000)

        def run(s: Session) -> tuple[pd.DataFrame, list[Event]]:
            frame = load_candles(s, ex, symbol, tf, start_ms=start, limit=max_bars)
            evs = list_events(s, exchange=ex, symbol=symbol, timeframe=tf, since_ms=start)
            return frame, evs

        frame, evs = await self._db(run)
        if frame.empty:
            raise InputError(f"no candles stored for {symbol} {tf} in the last {_span(period)}")
        title = f"{ex}:{symbol} {tf}"
        png = await asyncio.to_thread(render_alert_chart, frame, events=events_for_chart(evs), title=title)
        return png, tf

    async def backtest(self, symbol: str, strategy: str | None, period: str | None) -> tuple[str, bytes | None]:
        if self.run_backtest_for_chat is None:
            raise BotError("backtests are not available in this installation")
        await self._entry_for(symbol, removed_ok=True)  # a removed market's stored history still backtests
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

    async def unmute_symbol(self, chat_id: int, symbol: str) -> bool:
        """Lift one symbol's mute in one chat; returns whether it was muted."""
        return await self._db(lambda s: unmute_symbol(s, chat_id, symbol))

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

        report = await self._db(run)
        if self.view is None:
            return report
        return replace(report, detectors=self.view.detector_runs(), telegram=self.view.telegram())
