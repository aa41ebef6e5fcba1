"""How much work a chat can make the bot do: bounds on backtests and charts, and the queue in front of them.

A backtest from chat (``/backtest`` or an alert's button) reads candles and
runs vectorbt in a worker thread; unbounded, one request on a symbol with
millions of one-minute bars took the process from 238 MB to 4.1 GB, and
every chat could start one. So:

- a backtest covers :data:`CHAT_LIMITS` ``backtest_default_period`` unless
  the user names a period, and loads at most ``backtest_max_bars`` bars (the
  newest of the period); a chart at most ``chart_max_bars``;
- heavy jobs pass a :class:`JobGate`: at most ``running`` at once for all
  chats together, at most ``waiting`` more queued behind them, and anyone
  past that is told the bot is busy instead of piling up threads and memory.

The memory these bounds buy is measured by ``bench/bench_chat_limits.py``
and written down in ``docs/bot.md``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta

from core.errors import BotError

__all__ = ["CHAT_LIMITS", "Busy", "ChatGates", "ChatLimits", "JobGate", "Ticket"]


class Busy(BotError):
    """Every slot and queue place for this kind of job is taken: try later."""


@dataclass(frozen=True)
class ChatLimits:
    backtest_default_period: timedelta = timedelta(days=90)
    backtest_max_period: timedelta = timedelta(days=3650)
    backtest_max_bars: int = 50_000
    backtests_running: int = 2  # the machine has 2 cores; more would only share them
    backtests_waiting: int = 4
    chart_max_bars: int = 2_000
    chart_max_period: timedelta = timedelta(days=90)
    charts_running: int = 2
    charts_waiting: int = 8
    events_max: int = 50


CHAT_LIMITS = ChatLimits()


class Ticket:
    """One admitted job's place: ``async with ticket`` waits for a running slot; :meth:`release` gives it back."""

    def __init__(self, gate: JobGate, ahead: int) -> None:
        self.gate = gate
        self.ahead = ahead  # jobs admitted before this one and still there when it was admitted
        self._running = False
        self._released = False

    async def __aenter__(self) -> Ticket:
        await self.gate._semaphore().acquire()
        if self._released:  # released while waiting (the task was cancelled and its callback ran)
            self.gate._semaphore().release()
            raise asyncio.CancelledError
        self._running = True
        self.gate.active += 1
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        """Give the place (and the slot, if running) back; safe to call twice (done callbacks call it too)."""
        if self._released:
            return
        self._released = True
        if self._running:
            self._running = False
            self.gate.active -= 1
            self.gate._semaphore().release()
        self.gate.admitted -= 1


class JobGate:
    """At most ``running`` jobs at once and ``waiting`` more in line; :meth:`admit` refuses the rest at once.

    Admission is synchronous (the command answers "busy" before starting anything); the admitted
    job then waits for a running slot with ``async with ticket``, in arrival order (asyncio's
    semaphore is fair).
    """

    def __init__(self, running: int, waiting: int, *, what: str = "jobs") -> None:
        self.running = running
        self.waiting = waiting
        self.what = what
        self._slots: asyncio.Semaphore | None = None
        self.admitted = 0  # running + waiting
        self.active = 0

    def _semaphore(self) -> asyncio.Semaphore:
        if self._slots is None:  # created on first use, inside the running loop
            self._slots = asyncio.Semaphore(self.running)
        return self._slots

    def admit(self) -> Ticket:
        """Reserve a place (running or queued), or raise :class:`Busy`."""
        if self.admitted >= self.running + self.waiting:
            raise Busy(
                f"The bot is busy: {self.active} {self.what} running and {self.admitted - self.active} waiting. "
                "Please try again in a few minutes."
            )
        ahead = max(0, self.admitted - self.running + 1) if self.admitted >= self.running else 0
        self.admitted += 1
        return Ticket(self, ahead)


@dataclass
class ChatGates:
    """The gates of one bot process: one for backtests, one for charts."""

    limits: ChatLimits = CHAT_LIMITS
    backtests: JobGate = field(init=False)
    charts: JobGate = field(init=False)

    def __post_init__(self) -> None:
        self.backtests = JobGate(self.limits.backtests_running, self.limits.backtests_waiting, what="backtests")
        self.charts = JobGate(self.limits.charts_running, self.limits.charts_waiting, what="charts")
