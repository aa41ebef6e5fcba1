"""The connection to the Bot API, kept up in the background so that nothing waits for it.

``vigil run`` used to start the Telegram application before anything else:
with the Bot API unreachable, ``Application.initialize()`` raised and the
surveillance never started. :class:`TelegramLink` turns the bot into a
passenger. :meth:`start` returns at once; a task initializes, starts and
long-polls the application, retrying with exponential backoff until the Bot
API answers. While it is away, alerts stay ``pending`` in the outbox (the
dispatcher asks :attr:`up` before claiming Telegram deliveries, so an outage
burns no attempts) and go out when it is back.

An outage after start is noticed from the polling errors (python-telegram-bot
passes them to our ``error_callback`` instead of logging three chained
tracebacks at ERROR each time) or from a failed send; a probe then asks
``getMe`` with backoff until Telegram answers. Each outage is logged once when
it starts and once when it ends, with how long it lasted, and
:meth:`state` tells ``/status`` the same.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut

from storage.models import utcnow

__all__ = ["LinkState", "TelegramLink", "describe_duration"]

log = logging.getLogger(__name__)


def describe_duration(span: timedelta) -> str:
    """``42 s``, ``3 min``, ``2.5 h``: how long, for people."""
    seconds = span.total_seconds()
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _short(err: BaseException) -> str:
    return f"{type(err).__name__}: {err}"[:300]


@dataclass(frozen=True)
class LinkState:
    """What ``/status`` shows about Telegram."""

    up: bool
    down_since: datetime | None  # start of the outage in progress (or of the failed start)
    last_outage: tuple[datetime, datetime] | None  # the last outage that ended
    last_error: str | None
    gave_up: bool = False  # the token was refused: no retry can help


class TelegramLink:
    """Starts ``app`` in the background, keeps polling through outages, and knows whether Telegram is reachable."""

    def __init__(
        self,
        app: Any,
        *,
        poll_timeout: float = 10.0,
        retry_base: float = 1.0,
        retry_max: float = 60.0,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.app = app
        self.poll_timeout = poll_timeout
        self.retry_base = retry_base
        self.retry_max = max(retry_base, retry_max)
        self.now = now
        self.up = False
        self.down_since: datetime | None = None
        self.last_outage: tuple[datetime, datetime] | None = None
        self.last_error: str | None = None
        self.gave_up = False
        self._closing = False
        self._post_init_done = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._probing = False

    # -- what others ask ---------------------------------------------------------------------
    def state(self) -> LinkState:
        return LinkState(self.up, self.down_since, self.last_outage, self.last_error, self.gave_up)

    def report(self, err: BaseException) -> None:
        """A send failed: if the network is why, mark Telegram away and probe until it answers."""
        if isinstance(err, NetworkError) and not isinstance(err, TimedOut) and self.up:
            self._went_down(err)
            self._probe()

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background; returns at once."""
        self._spawn(self._connect(), "telegram-connect")

    async def aclose(self) -> None:
        """Stop the tasks and the application, and close its HTTP clients, however far it got."""
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        app = self.app
        with contextlib.suppress(Exception):
            if app.updater is not None and app.updater.running:
                await self._stop_updater()
        with contextlib.suppress(Exception):
            if app.running:
                await app.stop()
        try:
            await app.shutdown()  # a no-op when initialize() never succeeded ...
        finally:
            await app.bot.shutdown()  # ... so close the bot's HTTP clients ourselves (a no-op when done)

    # -- internals ----------------------------------------------------------------------------
    async def _stop_updater(self) -> None:
        """Stop polling. python-telegram-bot then confirms the fetched updates with one more ``getUpdates``;
        with Telegram unreachable that fails with a traceback at ERROR, which says nothing we do not know."""
        updater_log = logging.getLogger("telegram.ext.Updater")
        quiet = not self.up
        level = updater_log.level
        if quiet:
            log.info("stopping while Telegram is unreachable: updates fetched last may be delivered again on restart")
            updater_log.setLevel(logging.CRITICAL)
        try:
            await self.app.updater.stop()
        finally:
            if quiet:
                updater_log.setLevel(level)

    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _start_app(self) -> None:
        app = self.app
        await app.initialize()  # getMe: the first request that needs the Bot API
        if not self._post_init_done and app.post_init is not None:
            await app.post_init(app)
            self._post_init_done = True
        if not app.running:
            await app.start()
        if app.updater is not None and not app.updater.running:
            await app.updater.start_polling(
                timeout=timedelta(seconds=self.poll_timeout),
                drop_pending_updates=False,
                error_callback=self._poll_error,
            )

    async def _connect(self) -> None:
        delay = self.retry_base
        attempt_at = self.now()
        while not self._closing:
            try:
                await self._start_app()
            except InvalidToken as err:
                self.gave_up, self.last_error = True, _short(err)
                log.error("Telegram refused the bot token; the bot stays offline and alerts stay queued: %s", err)
                return
            except Exception as err:  # network errors mostly; anything else is retried the same way, and logged
                if not isinstance(err, TelegramError):
                    log.warning("starting the Telegram application failed: %s", _short(err), exc_info=True)
                if self.down_since is None:
                    self.down_since = attempt_at
                    log.warning(
                        "Telegram unreachable at start (%s); surveillance goes on, alerts queue in the outbox, "
                        "the bot keeps trying in the background",
                        _short(err),
                    )
                self.last_error = _short(err)
                log.debug("Telegram still unreachable; next attempt in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(self.retry_max, delay * 2)
            else:
                self._came_up()
                return

    def _poll_error(self, err: TelegramError) -> None:
        """python-telegram-bot's polling loop failed (and will retry by itself): one line, not three tracebacks."""
        if isinstance(err, NetworkError):
            if self.up:
                self._went_down(err)
            self.last_error = _short(err)
            self._probe()
        else:
            log.warning("Telegram polling error: %s", _short(err))

    def _probe(self) -> None:
        if not self._probing and not self._closing:
            self._probing = True
            self._spawn(self._probe_until_back(), "telegram-probe")

    async def _probe_until_back(self) -> None:
        delay = self.retry_base
        try:
            while not self._closing and not self.up:
                await asyncio.sleep(delay)
                try:
                    await self.app.bot.get_me()
                except TelegramError as err:
                    self.last_error = _short(err)
                    delay = min(self.retry_max, delay * 2)
                else:
                    self._came_up()
        finally:
            self._probing = False

    def _went_down(self, err: BaseException) -> None:
        self.up = False
        self.down_since = self.now()
        self.last_error = _short(err)
        log.warning("Telegram unreachable (%s); alerts queue in the outbox until it is back", self.last_error)

    def _came_up(self) -> None:
        now = self.now()
        if self.down_since is not None:
            self.last_outage = (self.down_since, now)
            away = describe_duration(now - self.down_since)
            log.info("Telegram reachable again after %s away; sending the queued alerts", away)
        else:
            log.info("Telegram connected")
        self.up, self.down_since = True, None
