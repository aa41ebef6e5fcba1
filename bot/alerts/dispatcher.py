"""Sends queued alert deliveries, once, through a sink: Telegram, or the console and PNG files.

:meth:`Dispatcher.flush` is what the runtime calls after each cycle (and the
bot's JobQueue calls every few seconds). A delivery goes out in two steps:

1. the alert **text** (with its buttons) at once: a chart is never waited for;
2. the **chart**, right after, as a reply to that text. Charts are drawn while
   texts are being sent, by a pool of worker processes (``bot/alerts/chart_pool.py``)
   on a reused figure template (``bot/alerts/chart_template.py``).

Each step goes through three short transactions: claim (``pending`` ->
``sending``, attempts + 1), send, record (``sent``, ``pending`` again with a
retry time, or ``failed``). See ``storage/outbox.py`` for why a step caught
mid-send by a crash is re-sent (at-least-once) unless ``resend_abandoned=False``.
Telegram's per-chat limits are the bot's rate limiter's job (PTB's
``AIORateLimiter``: 30 messages/s overall, 20 a minute in a group), and a 429
that still comes back is honoured below.

Error policy for Telegram (python-telegram-bot's exception classes), for either step:

==================  ==================================================================
429 ``RetryAfter``  back to pending until ``retry_after``; not counted as an attempt
403 ``Forbidden``   bot blocked or kicked: chat marked inactive, delivery failed
400 ``BadRequest``  logged, step failed (retrying the same request cannot help)
5xx / network       retried with exponential backoff until ``alerts.max_attempts``
==================  ==================================================================
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from rich.console import Console
from rich.panel import Panel
from rich.text import Text
from sqlalchemy.orm import Session, sessionmaker
from telegram import ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter
from telegram.warnings import PTBDeprecationWarning

from bot.alerts.chart_pool import ChartPool, ChartRenderer, ThreadCharts
from bot.alerts.stream_chart import load_stream_chart_inputs, render_chunk_chart, stream_grain
from bot.alerts.text import alert_keyboard, compose_alert, html_to_text
from bot.runtime.faults import crash_point
from core.config import Config
from storage.candles import load_candles
from storage.chats import mark_chat_inactive
from storage.models import Alert, utcnow
from storage.outbox import (
    DEFAULT_LEASE,
    claim_charts_due,
    claim_due,
    mark_failed,
    mark_retry,
    mark_sent,
    peek_due,
    recover_abandoned,
)

__all__ = ["ConsoleSink", "Dispatcher", "FlushResult", "Sink", "TelegramSink", "alert_targets", "make_dispatcher"]

log = logging.getLogger(__name__)


class Sink(Protocol):
    channel: str

    async def send_text(self, chat_id: int, text: str, alert: Alert) -> int | None:
        """Deliver an alert's text; return the message id if there is one. Raise on failure."""
        ...

    async def send_chart(self, chat_id: int, png: bytes, alert: Alert, reply_to: int | None) -> int | None:
        """Deliver its chart (as a reply to ``reply_to`` where the channel has replies). Raise on failure."""
        ...


class TelegramSink:
    """Alerts as an HTML message with the inline buttons, then the chart as a photo replying to it.

    With a ``link`` (``bot.telegram.link.TelegramLink``) the sink is ready only
    while Telegram is reachable, so an outage leaves deliveries pending without
    spending their attempts, and a send that fails for network reasons tells the link.
    """

    channel = "telegram"

    def __init__(self, bot: Any, link: Any = None) -> None:
        self.bot = bot
        self.link = link

    def ready(self) -> bool:
        return self.link is None or bool(self.link.up)

    async def send_text(self, chat_id: int, text: str, alert: Alert) -> int | None:
        keyboard = alert_keyboard(alert.id)
        return await self._sent(self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, reply_markup=keyboard))

    async def send_chart(self, chat_id: int, png: bytes, alert: Alert, reply_to: int | None) -> int | None:
        reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
        bar = pd.Timestamp(alert.bar_ts, unit="ms", tz="UTC")
        caption = f"{alert.exchange}:{alert.symbol} {alert.timeframe} · bar {bar:%Y-%m-%d %H:%M} UTC"
        return await self._sent(self.bot.send_photo(chat_id, photo=png, caption=caption, reply_parameters=reply))

    async def _sent(self, request: Any) -> int:
        try:
            msg = await request
        except Exception as err:
            if self.link is not None:
                self.link.report(err)
            raise
        return int(msg.message_id)


class ConsoleSink:
    """Without a token: the alert text on the terminal (rich), the chart as a PNG file."""

    channel = "console"

    def __init__(self, chart_dir: str | Path, console: Console | None = None) -> None:
        self.chart_dir = Path(chart_dir)
        self.console = console or Console()

    async def send_text(self, chat_id: int, text: str, alert: Alert) -> int | None:
        # Text, not a markup string: "[pump_dump]" in an alert is data, not rich markup
        self.console.print(Panel(Text(html_to_text(text)), title=f"alert {alert.id}", expand=False), highlight=False)
        return None

    async def send_chart(self, chat_id: int, png: bytes, alert: Alert, reply_to: int | None) -> int | None:
        self.chart_dir.mkdir(parents=True, exist_ok=True)
        name = f"alert-{alert.id}-{re.sub(r'[^A-Za-z0-9]+', '_', alert.symbol)}-{alert.bar_ts}.png"
        path = self.chart_dir / name
        await asyncio.to_thread(path.write_bytes, png)
        self.console.print(f"chart of alert {alert.id}: {path}", highlight=False)
        return None


@dataclass(eq=False)  # compared by identity: a flush's result is registered while it waits for charts
class FlushResult:
    """Texts ``sent``/``retried``/``failed``, the same for charts, and steps recovered after a crash."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    recovered: int = 0
    charts_sent: int = 0
    charts_retried: int = 0
    charts_failed: int = 0

    def count(self, part: str, outcome: str) -> None:
        name = outcome if part == "text" else f"charts_{outcome}"
        setattr(self, name, getattr(self, name) + 1)


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
        charts: ChartRenderer | None = None,
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
        self.charts: ChartRenderer = charts if charts is not None else ThreadCharts()
        self._lock = asyncio.Lock()  # one text sender at a time
        # Alert id -> (text, task drawing its chart), shared by the alert's chats and by both steps.
        self._prepared: dict[int, asyncio.Task[tuple[str, asyncio.Task[bytes | None]]]] = {}
        self._chart_sender: asyncio.Task[None] | None = None
        self._texts_running = 0
        self._text_sent = asyncio.Event()
        self._listeners: set[FlushResult] = set()  # flushes waiting for the charts, told what became of them

    def _tx(self, fn: Callable[[Session], Any]) -> Any:
        with self.session_factory.begin() as session:
            return fn(session)

    async def _db(self, fn: Callable[[Session], Any]) -> Any:
        return await asyncio.to_thread(self._tx, fn)

    async def render(self, alert: Alert) -> tuple[str, bytes | None]:
        """Message text and chart for an alert (chart failures degrade to text only)."""
        text, chart = await self._prepare(alert)
        return text, await chart

    async def _prepare(self, alert: Alert) -> tuple[str, asyncio.Task[bytes | None]]:
        """The alert's text now, and a task drawing its chart meanwhile."""
        chunk_s = stream_grain(alert)
        if chunk_s is not None:  # from the live trade stream: chunks, not candles
            return await self._prepare_stream(alert, chunk_s)
        frame, context, venues = await self._db(partial(_alert_inputs, alert=alert, bars=self.chart_bars))
        text = compose_alert(alert, alert.events, frame)

        async def draw() -> bytes | None:
            if frame.empty:
                return None
            from bot.alerts.charts import events_for_chart  # matplotlib: only once there is a chart to draw

            try:
                title = f"{alert.exchange}:{alert.symbol} {alert.timeframe}"
                own = f"{alert.exchange}:{alert.symbol}"
                return await self.charts.render(frame, events_for_chart(context), title, venues=venues, venue=own)
            except Exception:  # noqa: BLE001 - an alert without a picture beats no alert
                log.exception("chart for alert %s failed; its text went alone", alert.id)
                return None

        return text, asyncio.create_task(draw())

    async def _prepare_stream(self, alert: Alert, chunk_s: int) -> tuple[str, asyncio.Task[bytes | None]]:
        """A trade-stream alert: its text (with the seconds since the first abnormal chunk closed, on the
        wall clock right before the text goes out) and its chunk chart, drawn in a thread meanwhile."""
        chunks = await self._db(lambda s: load_stream_chart_inputs(s, alert, chunk_s))
        text = compose_alert(alert, alert.events, None, now_ms=int(time.time() * 1000))

        async def draw() -> bytes | None:
            if chunks.empty:
                return None
            try:
                title = f"{alert.exchange}:{alert.symbol} trades, {chunk_s} s chunks"
                when = pd.Timestamp(int(alert.bar_ts), unit="ms", tz="UTC")
                threshold = max((float(e.threshold) for e in alert.events), default=None)
                return await asyncio.to_thread(
                    render_chunk_chart, chunks, alert_ts=when, threshold=threshold, title=title
                )
            except Exception:  # noqa: BLE001 - an alert without a picture beats no alert
                log.exception("chart for stream alert %s failed; its text went alone", alert.id)
                return None

        return text, asyncio.create_task(draw())

    async def _prepared_for(self, alert: Alert) -> tuple[str, asyncio.Task[bytes | None]]:
        return await asyncio.shield(self._start_preparing(alert))

    def _start_preparing(self, alert: Alert) -> asyncio.Task[tuple[str, asyncio.Task[bytes | None]]]:
        """One text and one chart per alert, shared by its chats and by both steps."""
        task = self._prepared.get(alert.id)
        if task is None:
            task = self._prepared[alert.id] = asyncio.create_task(self._prepare(alert))
        return task

    def _forget_prepared(self) -> None:
        for task in self._prepared.values():
            if task.done() and not task.cancelled() and task.exception() is None:
                task.result()[1].cancel()
            task.cancel()
        self._prepared.clear()

    # -- lifecycle ------------------------------------------------------------------------
    async def wait_charts(self) -> None:
        """Until every chart due now has been sent (or failed, or put back for a retry)."""
        while self._chart_sender is not None:
            await asyncio.shield(self._chart_sender)

    def cancel_charts(self) -> None:
        """Stop sending charts at once (what a killed process does); the outbox keeps what is left."""
        if self._chart_sender is not None:
            self._chart_sender.cancel()

    async def aclose(self) -> None:
        """Let due charts go out, then stop the chart workers."""
        try:
            await self.wait_charts()
        finally:
            self.close()

    def close(self) -> None:
        """Stop the chart workers (charts still due are sent by the next process)."""
        self.cancel_charts()
        self.charts.close()

    # -- sending --------------------------------------------------------------------------
    async def flush(self, *, wait_charts: bool = True) -> FlushResult:
        """Send every due text now; charts follow, drawn and sent while the texts go out.

        Texts never wait for charts. With ``wait_charts`` (the default) this returns once
        the charts are out too; without (the live cycle), they keep going in the background
        and the cycle moves on. Never raises for a delivery's failure.
        """
        result = FlushResult()
        if wait_charts:
            self._listeners.add(result)
        try:
            async with self._lock:
                result.recovered = await self._db(
                    lambda s: recover_abandoned(s, now=self.now(), resend=self.resend_abandoned)
                )
                self._texts_running += 1
                try:
                    # Read (and start drawing) every due alert now, side by side, not one per send.
                    ready = self._ready_channels()
                    due = await self._db(lambda s: peek_due(s, channels=ready, now=self.now(), limit=100))
                    for delivery in due:
                        self._start_preparing(delivery.alert)
                    self._start_chart_sender()  # charts already due go while the texts are sent
                    for _ in range(self.max_per_flush):
                        # A sink that is not ready (Telegram unreachable) keeps its deliveries pending.
                        channels = self._ready_channels()
                        if not channels:
                            break
                        # One row at a time: only the row actually on the wire is ever in 'sending',
                        # so a crash leaves at most one text (and one chart) with an unknown outcome.
                        claimed = await self._db(partial(self._claim_one, claim=claim_due, channels=channels))
                        if not claimed:
                            break
                        for delivery in claimed:
                            await self._send(delivery, "text", (result,))
                            self._start_chart_sender()
                            self._text_sent.set()
                finally:
                    self._texts_running -= 1
                    self._text_sent.set()
            if wait_charts:
                await self.wait_charts()
        finally:
            self._listeners.discard(result)
        return result

    def _ready_channels(self) -> list[str]:
        return [c for c, sink in self.sinks.items() if getattr(sink, "ready", lambda: True)()]

    def _claim_one(self, session: Session, *, claim: Callable[..., list[Any]], channels: list[str]) -> list[Any]:
        return claim(session, channels=channels, now=self.now(), lease=self.lease, limit=1)

    def _start_chart_sender(self) -> None:
        if self._chart_sender is None:
            self._chart_sender = asyncio.create_task(self._send_charts(), name="alert-charts")

    async def _send_charts(self) -> None:
        """Claim and send due charts until none is due and no text is being sent."""
        try:
            for _ in range(self.max_per_flush):
                self._text_sent.clear()  # before the claim: a text sent after it wakes the wait below
                channels = self._ready_channels()
                claimed = (
                    await self._db(partial(self._claim_one, claim=claim_charts_due, channels=channels))
                    if channels
                    else []
                )
                for delivery in claimed:
                    await self._send(delivery, "chart", tuple(self._listeners))
                if claimed:
                    continue
                if self._texts_running == 0:
                    return
                await self._text_sent.wait()
        except Exception:  # noqa: BLE001 - what is left stays in the outbox for the next flush
            log.exception("sending charts failed; they stay queued")
        finally:
            self._chart_sender = None
            if self._texts_running == 0:  # nothing will use the drawn charts any more
                self._forget_prepared()

    async def _send(self, delivery: Any, part: str, results: tuple[FlushResult, ...]) -> None:
        sink = self.sinks[delivery.channel]
        did, chat_id = delivery.id, delivery.chat_id
        attempts = delivery.attempts if part == "text" else delivery.chart_attempts
        tag = "" if part == "text" else "chart "  # last_error says which step failed
        try:
            text, chart = await self._prepared_for(delivery.alert)
            if part == "text":
                message_id = await sink.send_text(chat_id, text, delivery.alert)
            else:
                png = await asyncio.shield(chart)
                if png is None:
                    await self._db(lambda s: mark_failed(s, did, error="chart: nothing to draw", part="chart"))
                    _count(results, part, "failed")
                    return
                message_id = await sink.send_chart(chat_id, png, delivery.alert, delivery.message_id)
        except RetryAfter as err:
            with warnings.catch_warnings():  # PTB 22.2+: int now, timedelta in a future major
                warnings.simplefilter("ignore", PTBDeprecationWarning)
                after = err.retry_after
            wait = after if isinstance(after, timedelta) else timedelta(seconds=after)
            msg = f"{tag}429: {err}"
            log.warning("delivery %s (%s): rate limited, retry in %s", did, part, wait)
            await self._db(
                lambda s: mark_retry(
                    s, did, error=msg, next_attempt_at=self.now() + wait, count_attempt=False, part=part
                )
            )
            _count(results, part, "retried")
        except Forbidden as err:
            msg = f"{tag}403: {err}"
            log.warning("delivery %s: chat %s blocked or removed the bot (%s); marking it inactive", did, chat_id, err)
            await self._db(lambda s: _forbid(s, did, chat_id, msg, part))
            _count(results, part, "failed")
        except BadRequest as err:
            msg = f"{tag}400: {err}"
            log.error("delivery %s (%s): Telegram refused the request (%s); not retrying", did, part, msg)
            await self._db(lambda s: mark_failed(s, did, error=msg, part=part))
            _count(results, part, "failed")
        except Exception as err:  # noqa: BLE001 - network, 5xx, timeouts: retry with backoff
            msg = f"{tag}{type(err).__name__}: {err}"
            if attempts >= self.max_attempts:
                log.error("delivery %s (%s): giving up after %d attempts: %s", did, part, attempts, msg)
                await self._db(lambda s: mark_failed(s, did, error=msg, part=part))
                _count(results, part, "failed")
            else:
                wait = _backoff(attempts, self.backoff_base_s, self.backoff_cap_s)
                log.warning("delivery %s (%s): attempt %d failed (%s); retry in %s", did, part, attempts, msg, wait)
                await self._db(lambda s: mark_retry(s, did, error=msg, next_attempt_at=self.now() + wait, part=part))
                _count(results, part, "retried")
        else:
            with_chart = part == "text" and getattr(sink, "charts", True)
            await self._db(
                lambda s: mark_sent(s, did, now=self.now(), message_id=message_id, chart=with_chart, part=part)
            )
            _count(results, part, "sent")
            if part == "text":
                crash_point("after_first_send")


def _count(results: tuple[FlushResult, ...], part: str, outcome: str) -> None:
    for result in results:
        result.count(part, outcome)


def _forbid(session: Session, delivery_id: int, chat_id: int, error: str, part: str) -> None:
    """The chat blocked or removed the bot: this step failed (a sent text stays sent), the chat is inactive."""
    mark_failed(session, delivery_id, error=error, part=part)
    mark_chat_inactive(session, chat_id)


def _alert_inputs(session: Session, *, alert: Alert, bars: int) -> tuple[pd.DataFrame, list[Any], Any]:
    """What an alert's text and chart need, read in one transaction: candles, events, group venues."""
    frame, context = _chart_inputs(session, alert, bars)
    return frame, context, group_closes(session, alert, frame)


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
    cfg: Config,
    session_factory: sessionmaker[Session],
    *,
    bot: Any = None,
    console: Console | None = None,
    link: Any = None,
    **kw: Any,
) -> Dispatcher:
    """The dispatcher for this config: Telegram through ``bot`` when given, and always the console sink
    (so alerts queued while there was no token still go somewhere). ``link`` gates Telegram sends on reachability."""
    sinks: dict[str, Sink] = {"console": ConsoleSink(cfg.alerts.chart_dir, console)}
    if bot is not None:
        sinks["telegram"] = TelegramSink(bot, link)
    if "charts" not in kw:
        workers = cfg.alerts.chart_workers
        kw["charts"] = ThreadCharts() if workers == 0 else ChartPool(workers)
    return Dispatcher(
        session_factory, sinks, max_attempts=cfg.alerts.max_attempts, chart_bars=cfg.alerts.chart_bars, **kw
    )
