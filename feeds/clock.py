"""Market clocks for the trade streams: the wall clock live, an accelerated one in replays.

The stream job asks a clock what time it is on the market (``now_ms``), how long to sleep until
a market time (``wall_delay``) and which wall-clock instant a market time was
(``wall_epoch_ms``, what an alert's "sent N s after" is measured against). The loopback exchange
and the stream job share one :class:`ReplayClock`, so an accelerated replay is consistent end to
end: chunks close when the replayed market says so.
"""

from __future__ import annotations

import time
from typing import Protocol

__all__ = ["MarketClock", "ReplayClock", "WallClock"]


class MarketClock(Protocol):
    def now_ms(self) -> int: ...

    def wall_delay(self, market_ms: int) -> float: ...

    def wall_epoch_ms(self, market_ms: int) -> float: ...


class WallClock:
    """The market is now: epoch milliseconds of the system clock."""

    speed = 1.0

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def wall_delay(self, market_ms: int) -> float:
        return max(0.0, (market_ms - time.time() * 1000) / 1000.0)

    def wall_epoch_ms(self, market_ms: int) -> float:
        return float(market_ms)


class ReplayClock:
    """Market time that runs ``speed`` times faster than the wall clock, from ``origin_ms``.

    ``speed=1`` with ``origin_ms`` = now behaves like :class:`WallClock`. A clock made with
    ``paused=True`` stays at ``origin_ms`` until :meth:`resume` (so a replay's start-up, model
    loading and history fetch, does not eat into the replayed market).
    """

    def __init__(self, origin_ms: int, speed: float = 1.0, *, paused: bool = False) -> None:
        if speed <= 0:
            raise ValueError(f"ReplayClock: speed must be > 0, got {speed}")
        self.origin_ms = int(origin_ms)
        self.speed = float(speed)
        self._t0 = time.monotonic()
        self.paused = paused

    def resume(self) -> None:
        """Start the market running from ``origin_ms`` now."""
        if self.paused:
            self._t0 = time.monotonic()
            self.paused = False

    def now_ms(self) -> int:
        if self.paused:
            return self.origin_ms
        return self.origin_ms + int((time.monotonic() - self._t0) * 1000 * self.speed)

    def wall_delay(self, market_ms: int) -> float:
        """Wall seconds until market time ``market_ms`` (0 when past)."""
        return max(0.0, (market_ms - self.now_ms()) / 1000.0 / self.speed)

    def wall_seconds(self, market_ms: int) -> float:
        """The ``time.monotonic()`` value at which the market reaches (or reached) ``market_ms``."""
        if self.paused:
            return time.monotonic() + (market_ms - self.origin_ms) / 1000.0 / self.speed
        return self._t0 + (market_ms - self.origin_ms) / 1000.0 / self.speed

    def wall_epoch_ms(self, market_ms: int) -> float:
        """The wall-clock epoch ms at which the market reaches (or reached) ``market_ms``."""
        return time.time() * 1000 - (time.monotonic() - self.wall_seconds(market_ms)) * 1000
