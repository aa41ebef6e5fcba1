"""Sends queued alert deliveries, once, through a sink: Telegram, or the console and PNG files.

:meth:`Dispatcher.flush` is what the runtime calls after each cycle (and the
bot's JobQueue calls every few seconds). Each delivery goes through three
short transactions: claim (``pending`` -> ``sending``, attempts + 1), send,
record (``sent``, ``pending`` again with ``next_attempt_at``, or
``failed``). See ``storage/outbox.py`` for why a row caught mid-send by a
crash is re-sent (at-least-once) unless ``resend_abandoned=False``.

Error policy for Telegram (python-telegram-bot's exception classes):

==================  ==================================================================
429 ``RetryAfter``  back to pending until ``retry_after``; not counted as an attempt
403 ``Forbidden``   bot blocked or kicked: chat marked inactive, delivery failed
400 ``BadRequest``  logged, delivery failed (retrying the same request cannot help)
5xx / network       retried with exponential backoff until ``alerts.max_attempts``
==================  ==================================================================
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from rich.console import Console
from rich.panel import Panel
from sqlalchemy.orm import Session, sessionmaker
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bot.alerts.charts import events_for_chart, render_alert_chart
from bot.alerts.text import alert_keyboard, compose_alert, html_to_text
from bot.runtime.faults import crash_point
from core.config import Config
from storage.candles import load_candles
from storage.chats import mark_chat_inactive
from storage.models import Alert, utcnow
from storage.outbox import DEFAULT_LEASE, claim_due, mark_failed, mark_retry, mark_sent, recover_abandoned

__all__ = ["ConsoleSink", "Dispatcher", "FlushResult", "Sink", "TelegramSink", "alert_targets", "make_dispatcher"]

log = logging.getLogger(__name__)
CAPTION_LIMIT = 1024


class Sink(Protocol):
    channel: str

    async def send(self, chat_id: int, text: str, png: bytes | None, alert: Alert) -> int | None:
        """Deliver one alert; return the message id if there is one. Raise on failure."""
        ...


class TelegramSink:
    """Alerts as a photo with an HTML caption and the inline buttons."""

    channel = "telegram"

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    async def send(self, chat_id: int, text: str, png: bytes | None, alert: Alert) -> int | None:
        keyboard = alert_keyboard(alert.id)
        if png is not None and len(text) <= CAPTION_LIMIT:
            msg = await self.bot.send_photo(
                chat_id, photo=png, caption=text, parse_mode=ParseMode.HTML, reply_markup=keyboard
            )
        else:
            msg = await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keyboard)
        return int(msg.message_id)


class ConsoleSink:
    """Without a token: the alert text on the terminal (rich), the chart as a PNG file."""

    channel = "console"

    def __init__(self, chart_dir: str | Path, console: Console | None = None) -> None:
        self.chart_dir = Path(chart_dir)
        self.console = console or Console()

    async def send(self, chat_id: int, text: str, png: bytes | None, alert: Alert) -> int | None:
        body = html_to_text(text)
        if png is not None:
            self.chart_dir.mkdir(parents=True, exist_ok=True)
            name = f"alert-{alert.id}-{re.sub(r'[^A-Za-z0-9]+', '_', alert.symbol)}-{alert.bar_ts}.png"
            path = self.chart_dir / name
            await asyncio.to_thread(path.write_bytes, png)
            body += f"\nchart: {path}"
        self.console.print(Panel(body, title=f"alert {alert.id}", expand=False), highlight=False)
        return None


@dataclass
class FlushResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0


def _backoff(attempt: int, base: float, cap: float) -> timedelta:
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempt - 1)))


class Dispatcher:
    """Sends due deliveries for the channels it has sinks for. Safe to call ``flush`` from several tasks."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        sinks: Mapping[str, Sink],
        *,
        max_attempts: int = 8,
        chart_bars: int = 120,
        lease: timedelta = DEFAULT_LEASE,
        resend_abandoned: bool = True,
        backoff_base_s: float = 5.0,
        backoff_cap_s: float = 900.0,
        max_per_flush: int = 1000,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.session_factory = session_factory
        self.sinks = dict(sinks)
        self.max_attempts = max_attempts
        self.chart_bars = chart_bars
        self.lease = lease
        self.resend_abandoned = resend_abandoned
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_per_flush = max_per_flush
        self.now = now
        self._lock = asyncio.Lock()

    def _tx(self, fn: Callable[[Session], Any]) -> Any:
        with self.session_factory.begin() as session:
            return fn(session)

    async def _db(self, fn: Callable[[Session], Any]) -> Any:
        return await asyncio.to_thread(self._tx, fn)

    async def render(self, alert: Alert) -> tuple[str, bytes | None]:
        """Message text and chart for an alert (chart failures degrade to text only)."""
        frame, context = await self._db(lambda s: _chart_inputs(s, alert, self.chart_bars))
        venues = await self._db(lambda s: group_closes(s, alert, frame))
        text = compose_alert(alert, alert.events, frame)
        png = None
        if not frame.empty:
            try:
                title = f"{alert.exchange}:{alert.symbol} {alert.timeframe}"
                own = f"{alert.exchange}:{alert.symbol}"
                png = await asyncio.to_thread(
                    render_alert_chart, frame, events=events_for_chart(context), title=title, venues=venues, venue=own
                )
            except Exception:  # noqa: BLE001 - an alert without a picture beats no alert
                log.exception("chart for alert %s failed; sending text only", alert.id)
        return text, png

    async def flush(self) -> FlushResult:
        """Send every due delivery; returns what happened. Never raises for a delivery's failure."""
        async with self._lock:
            result = FlushResult()
            result.recovered = await self._db(
                lambda s: recover_abandoned(s, now=self.now(), resend=self.resend_abandoned)
            )
            rendered: dict[int, tuple[str, bytes | None]] = {}
            for _ in range(self.max_per_flush):
                # One row at a time: only the row actually on the wire is ever in 'sending',
                # so a crash leaves at most one delivery with an unknown outcome.
                claimed = await self._db(
                    lambda s: claim_due(s, channels=self.sinks, now=self.now(), lease=self.lease, limit=1)
                )
                if not claimed:
                    break
                for delivery in claimed:
                    await self._send_one(delivery, rendered, result)
            return result

    async def _send_one(
        self, delivery: Any, rendered: dict[int, tuple[str, bytes | None]], result: FlushResult
    ) -> None:
        sink = self.sinks[delivery.channel]
        did, chat_id = delivery.id, delivery.chat_id
        try:
            if delivery.alert_id not in rendered:  # one render per alert, shared by its chats
                rendered[delivery.alert_id] = await self.render(delivery.alert)
            text, png = rendered[delivery.alert_id]
            message_id = await sink.send(chat_id, text, png, delivery.alert)
        except RetryAfter as err:
            with warnings.catch_warnings():  # PTB 22.2+: int now, timedelta in a future major
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                after = err.retry_after
            wait = after if isinstance(after, timedelta) else timedelta(seconds=after)
            msg = f"429: {err}"
            log.warning("delivery %s: rate limited, retry in %s", did, wait)
            await self._db(
                lambda s: mark_retry(s, did, error=msg, next_attempt_at=self.now() + wait, count_attempt=False)
            )
            result.retried += 1
        except Forbidden as err:
            msg = f"403: {err}"
            log.warning("delivery %s: chat %s blocked or removed the bot (%s); marking it inactive", did, chat_id, err)

            def forbid(s: Session) -> None:
                mark_failed(s, did, error=msg)
                mark_chat_inactive(s, chat_id)

            await self._db(forbid)
            result.failed += 1
        except BadRequest as err:
            msg = f"400: {err}"
            log.error("delivery %s: Telegram refused the request (%s); not retrying", did, msg)
            await self._db(lambda s: mark_failed(s, did, error=msg))
            result.failed += 1
        except Exception as err:  # noqa: BLE001 - network, 5xx, timeouts: retry with backoff
            msg = f"{type(err).__name__}: {err}"
            if delivery.attempts >= self.max_attempts:
                log.error("delivery %s: giving up after %d attempts: %s", did, delivery.attempts, msg)
                await self._db(lambda s: mark_failed(s, did, error=msg))
                result.failed += 1
            else:
                wait = _backoff(delivery.attempts, self.backoff_base_s, self.backoff_cap_s)
                log.warning("delivery %s: attempt %d failed (%s); retry in %s", did, delivery.attempts, msg, wait)
                await self._db(lambda s: mark_retry(s, did, error=msg, next_attempt_at=self.now() + wait))
                result.retried += 1
        else:
            await self._db(lambda s: mark_sent(s, did, now=self.now(), message_id=message_id))
            result.sent += 1
            crash_point("after_first_send")


def group_closes(session: Session, alert: Alert, frame: pd.DataFrame) -> dict[str, pd.Series] | None:
    """Closes of every venue of the alert's asset group over the chart's window (None outside a group).

    The venues come from the events' stored details (``venues``), so a chart drawn after a
    restart, or after the group changed, shows the venues the detector compared.
    """
    names: list[str] = []
    for event in alert.events:
        venues = (event.details or {}).get("venues")
        if isinstance(venues, dict):
            names += [str(k) for k in venues if str(k) not in names]
    if len(names) < 2 or frame.empty:
        return None
    start, end = int(frame.index[0].value // 1_000_000), int(frame.index[-1].value // 1_000_000) + 1
    out = {}
    for key in names:
        exchange, _, symbol = key.partition(":")
        candles = load_candles(session, exchange, symbol, alert.timeframe, start_ms=start, end_ms=end)
        if not candles.empty:
            out[key] = candles["close"]
    return out if len(out) > 1 else None


def _chart_inputs(session: Session, alert: Alert, bars: int) -> tuple[pd.DataFrame, list[Any]]:
    """The chart's candles (with social volume when stored) and every event inside its window.

    Earlier events of the same series are drawn too: a reader judges an
    anomaly better beside the ones before it. Only rows up to the alert's bar.
    """
    from core.timeframes import timeframe_to_ms
    from feeds.social.align import social_per_bar
    from storage.events import list_events
    from storage.social import load_social

    frame = load_candles(session, alert.exchange, alert.symbol, alert.timeframe, end_ms=alert.bar_ts + 1, limit=bars)
    if frame.empty:
        return frame, list(alert.events)
    start = int(frame.index[0].value // 1_000_000)
    bar_end = alert.bar_ts + timeframe_to_ms(alert.timeframe)  # the alert's bar is closed: its samples are known
    social = load_social(session, alert.symbol, start_ms=start, end_ms=bar_end)
    if not social.empty:
        frame["social_volume"] = social_per_bar(social, pd.DatetimeIndex(frame.index), alert.timeframe)
    context = list_events(
        session,
        exchange=alert.exchange,
        symbol=alert.symbol,
        timeframe=alert.timeframe,
        since_ms=start,
        until_ms=alert.bar_ts + 1,
        newest_first=False,
    )
    return frame, context or list(alert.events)


def alert_targets(cfg: Config) -> tuple[str, list[int]]:
    """(channel, chat ids) to queue alerts for: Telegram chats with a token, else the console."""
    if cfg.telegram.token is not None and cfg.telegram.alert_chats:
        return "telegram", cfg.telegram.alert_chats
    return "console", [0]


def make_dispatcher(
    cfg: Config, session_factory: sessionmaker[Session], *, bot: Any = None, console: Console | None = None, **kw: Any
) -> Dispatcher:
    """The dispatcher for this config: Telegram through ``bot`` when given, and always the console sink
    (so alerts queued while there was no token still go somewhere)."""
    sinks: dict[str, Sink] = {"console": ConsoleSink(cfg.alerts.chart_dir, console)}
    if bot is not None:
        sinks["telegram"] = TelegramSink(bot)
    return Dispatcher(
        session_factory, sinks, max_attempts=cfg.alerts.max_attempts, chart_bars=cfg.alerts.chart_bars, **kw
    )
