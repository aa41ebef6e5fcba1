"""Closed candles pushed over the exchange's WebSocket (ccxt.pro ``watch_ohlcv_for_symbols``).

Why: REST costs one request per symbol and cycle, and an exchange's request budget
(Binance: about 20 kline requests a second through ccxt's limiter) makes 1,000 symbols on
one-minute bars take most of the minute. A kline stream pushes every symbol's bar as it
forms, over one connection, so a cycle only reads what already arrived.

How it is used: :class:`KlineStream` subscribes to ``(symbol, timeframe)`` pairs and keeps
the subscriptions alive in a background task (ccxt reconnects when ``watch_*`` is called
again after a disconnect). ccxt stores every kline message it receives per symbol;
:meth:`KlineStream.closed_bars` returns the bars that are *final*: closed by ``now`` and
followed by a message of a later bar (so the exchange has sent the bar's last update).
Whatever the stream does not have (the history before it started, a disconnect, a bar
not confirmed yet) the caller fetches over REST; ``bot.runtime.fetch`` does exactly that,
so the stream is an accelerator, never the only source.

Chosen per exchange in the config: ``[exchanges.binance] candles = "websocket"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from core.config import ExchangeConfig
from core.timeframes import timeframe_to_ms
from feeds.exchange import _rows_to_frame, empty_candles

__all__ = ["KlineStream"]

log = logging.getLogger(__name__)

#: pairs per ``watch_ohlcv_for_symbols`` call (one SUBSCRIBE message; Binance takes up to 1,024 streams a connection)
SUBSCRIBE_CHUNK = 200
#: seconds to wait before re-subscribing after an error (doubles up to 60 s)
RETRY_BASE = 1.0


class KlineStream:
    """A ccxt.pro client watching kline streams, and the final bars it has received."""

    def __init__(self, name: str, cfg: ExchangeConfig | None = None) -> None:
        self.name = name
        self.cfg = cfg or ExchangeConfig()
        self._client: Any = None
        self._pairs: list[tuple[str, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.messages = 0  # watch calls that returned (for tests and benchmarks)
        self.errors = 0

    async def open(self) -> KlineStream:
        if self._client is None:
            import ccxt.pro as ccxtpro

            self._client = getattr(ccxtpro, self.name)({"enableRateLimit": True, **self.cfg.ccxt_config})
            await self._client.load_markets()
        return self

    async def close(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return list(self._pairs)

    async def watch(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Subscribe to these ``(symbol, timeframe)`` pairs as well (already watched ones are kept)."""
        await self.open()
        new = [p for p in dict.fromkeys(pairs) if p not in self._pairs]
        if not new:
            return
        self._pairs += new
        for first in range(0, len(new), SUBSCRIBE_CHUNK):
            chunk = [list(p) for p in new[first : first + SUBSCRIBE_CHUNK]]
            self._tasks.append(asyncio.create_task(self._keep(chunk), name=f"klines:{self.name}:{first}"))
        log.info("%s: watching %d kline streams over WebSocket", self.name, len(self._pairs))

    async def _keep(self, chunk: list[list[str]]) -> None:
        """Keep one subscription alive: each call returns on a message, and reconnects after a drop."""
        delay = RETRY_BASE
        while True:
            try:
                await self._client.watch_ohlcv_for_symbols(chunk)
                self.messages += 1
                delay = RETRY_BASE
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - a dropped stream is refilled over REST
                self.errors += 1
                what = f"{type(err).__name__}: {err}"
                log.warning("%s kline stream: %s; re-subscribing in %.0f s", self.name, what, delay)
                await asyncio.sleep(delay)
                delay = min(60.0, delay * 2)

    def closed_bars(self, symbol: str, timeframe: str, since_ms: int, now_ms: int) -> pd.DataFrame:
        """Final bars of ``symbol`` opening at or after ``since_ms`` and closed by ``now_ms`` (may be empty)."""
        if self._client is None:
            return empty_candles()
        market = (self._client.markets or {}).get(symbol)
        unified = market["symbol"] if market else symbol
        stored = (getattr(self._client, "ohlcvs", None) or {}).get(unified, {}).get(timeframe)
        if not stored:
            return empty_candles()
        step = timeframe_to_ms(timeframe)
        tail = max(2, (now_ms - since_ms) // step + 3)  # ccxt keeps them oldest first: only the tail can matter
        rows = [list(r[:6]) for r in stored[-tail:]]
        ts = np.array([r[0] for r in rows], dtype=np.int64)
        newest = int(ts.max())
        # final = closed by now, and a later bar has been seen (the exchange moved on from it)
        keep = (ts >= since_ms) & (ts + step <= now_ms) & (ts < newest)
        if not keep.any():
            return empty_candles()
        return _rows_to_frame([rows[i] for i in np.flatnonzero(keep)])
