"""Live public trades over ccxt's WebSocket client, complete and in order, for many symbols.

``TradeStream`` subscribes through ``ccxt.pro`` (``watch_trades_for_symbols``, up to
``group_size`` symbols per socket, one task per socket) and hands every trade to ``on_trades``
exactly once and in id order, via one :class:`~feeds.trade_sequence.SequenceTrack` per symbol.
What can go wrong with a stream, and what happens then:

* **the server closes the socket** (Binance does every 24 h, load balancers more often): ccxt
  rejects the pending watch; the group's task waits with exponential backoff and jitter
  (:class:`~feeds.retry.RetryPolicy`) and watches again, which makes ccxt dial a new socket and
  send the ``SUBSCRIBE`` again;
* **messages lost** (during the reconnect, or dropped): the next trade's id shows the hole; after
  ``reorder_wait`` seconds (a swapped message arrives within that) the missing ids are fetched over
  REST (``fetch_trades``: Binance ``aggTrades`` from the last trade's time, each aggregate expanded
  back to its ``f``..``l`` trade ids) and merged in;
* **messages repeated or swapped**: the track drops ids it has and releases in id order;
* **a quiet symbol**: no later trade shows whether its last message got through, so
  :meth:`TradeStream.verify` asks REST what happened since, on demand (the stream job does it for
  symbols whose chunk is due but who have not traded since).

``complete_until(symbol)`` is the watermark: all trades before it have been handed on. Nothing
here blocks the event loop: handling a message is a few dict operations, network waits are
awaited, and the consumer's callback must be quick (the chunk book only appends arrays).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.errors import DataSourceError
from feeds.retry import RetryPolicy
from feeds.trade_sequence import SequenceTrack, TradeBatch

__all__ = ["StreamStats", "TradeStream", "expand_aggregates"]

log = logging.getLogger(__name__)

_REST_LIMIT = 1000
_HOUR_MS = 3_600_000  # Binance answers aggTrades for at most one hour between startTime and endTime


def expand_aggregates(rows: Sequence[dict[str, Any]]) -> tuple[np.ndarray, ...]:
    """ccxt trades parsed from Binance ``aggTrades`` -> one row per underlying trade id.

    An aggregate with trade ids ``f``..``l`` (fills of one taker order at one price, one
    millisecond) becomes ``l - f + 1`` rows with that price and time and the amount split evenly,
    so order counts, rush orders, volume and prices come out as from the raw trades. Rows without
    ``f``/``l`` (a raw ``trades`` answer) keep their own id.

    Returns ``(ids, timestamp, price, amount, is_buy)`` arrays.
    """
    ids, ts, price, amount, buy = [], [], [], [], []
    for r in rows:
        info = r.get("info") or {}
        first, last = info.get("f"), info.get("l")
        if first is None or last is None:
            first = last = int(r["id"])
        first, last = int(first), int(last)
        n = last - first + 1
        ids.extend(range(first, last + 1))
        ts.extend([int(r["timestamp"])] * n)
        price.extend([float(r["price"])] * n)
        amount.extend([float(r["amount"]) / n] * n)
        buy.extend([r.get("side") == "buy"] * n)
    return (
        np.asarray(ids, dtype=np.int64),
        np.asarray(ts, dtype=np.int64),
        np.asarray(price, dtype=np.float64),
        np.asarray(amount, dtype=np.float64),
        np.asarray(buy, dtype=bool),
    )


@dataclass
class StreamStats:
    """What the stream went through (``/status`` and the benchmarks show it)."""

    messages: int = 0  # watch calls that returned trades
    trades: int = 0  # trades handed on
    reconnects: int = 0
    backfills: int = 0  # REST fetches for gaps
    backfilled: int = 0  # trades that came from REST
    verifications: int = 0
    errors: dict[str, str] = field(default_factory=dict)


class TradeStream:
    """Complete, ordered live trades of ``symbols`` on one exchange.

    Parameters
    ----------
    exchange : a ccxt exchange id with WebSocket support in ``ccxt.pro`` (``"binance"``).
    symbols : unified symbols (``"BTC/USDT"``).
    on_trades : called in the event loop with each :class:`TradeBatch` (consecutive ids).
    ccxt_config : constructor config (urls, options), as for the REST client.
    now_ms : the clock (wall time live, a replay clock in the demo).
    history_ms : on start, also hand on the trades of this many milliseconds before now, fetched
        over REST, from the start of a chunk boundary chosen by the caller (``start_ms``).
    group_size : symbols per socket (ccxt allows 200 per ``watch_trades_for_symbols``).
    reorder_wait : seconds a hole may stay open before REST is asked for it.
    retry : backoff between reconnects (and for REST calls).
    """

    def __init__(
        self,
        exchange: str,
        symbols: Sequence[str],
        on_trades: Callable[[TradeBatch], None],
        *,
        ccxt_config: dict[str, Any] | None = None,
        now_ms: Callable[[], int] | None = None,
        start_ms: int | None = None,
        group_size: int = 100,
        reorder_wait: float = 0.25,
        retry: RetryPolicy | None = None,
        max_rest_in_flight: int = 8,
    ) -> None:
        if not symbols:
            raise ValueError("TradeStream: no symbols to stream")
        if not 1 <= group_size <= 200:
            raise ValueError(f"TradeStream: group_size must be 1..200 (ccxt's cap), got {group_size}")
        self.exchange = exchange
        self.symbols = list(dict.fromkeys(symbols))
        self.on_trades = on_trades
        self.ccxt_config = dict(ccxt_config or {})
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.start_ms = start_ms
        self.group_size = group_size
        self.reorder_wait = reorder_wait
        self.retry = retry or RetryPolicy(max_retries=1_000_000, base_delay=0.5, max_delay=30.0)
        self.tracks = {s: SequenceTrack(s, wait_for_start=True) for s in self.symbols}
        self.stats = StreamStats()
        self.client: Any = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._rest = asyncio.Semaphore(max_rest_in_flight)
        self._fixing: dict[str, asyncio.Task[Any]] = {}
        self.connected: dict[int, bool] = {}

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> TradeStream:
        """Open the client, take each symbol's starting point over REST, start the socket tasks."""
        import ccxt.pro as ccxtpro

        if not hasattr(ccxtpro, self.exchange):
            raise DataSourceError(f"exchange {self.exchange!r} has no WebSocket client in ccxt.pro")
        # ccxt keeps the last `tradesLimit` parsed trades of every symbol (dicts of ~1.5 KB with their raw
        # payload): 200 symbols x 5000 held 1.5 GB. Trades are consumed as they arrive, so a small cache
        # is enough; a burst that overflows it shows up as a hole and is fetched over REST.
        options = {"tradesLimit": 500, **self.ccxt_config.get("options", {})}
        self.client = getattr(ccxtpro, self.exchange)({"enableRateLimit": True, **self.ccxt_config, "options": options})
        try:
            await self._rest_call(self.client.load_markets, "load_markets")
            missing = [s for s in self.symbols if s not in (self.client.markets or {})]
            if missing:
                raise DataSourceError(f"{self.exchange}: cannot stream unlisted symbol(s) {', '.join(missing[:5])}")
            await asyncio.gather(*(self._start_symbol(s) for s in self.symbols))
        except BaseException:
            await self.stop()
            raise
        groups = [self.symbols[i : i + self.group_size] for i in range(0, len(self.symbols), self.group_size)]
        self._tasks = [asyncio.create_task(self._watch(k, g), name=f"trades:{k}") for k, g in enumerate(groups)]
        log.info("%s: streaming trades of %d symbols on %d socket(s)", self.exchange, len(self.symbols), len(groups))
        return self

    async def stop(self) -> None:
        tasks = self._tasks + list(self._fixing.values())
        self._tasks, self._fixing = [], {}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.client is not None:
            client, self.client = self.client, None
            try:
                await client.close()
            except Exception:  # noqa: BLE001 - closing a half-dead client must not mask the reason we stop
                log.debug("closing the %s client failed", self.exchange, exc_info=True)

    async def __aenter__(self) -> TradeStream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- state --------------------------------------------------------------------------
    def complete_until(self, symbol: str) -> int:
        """Every trade of ``symbol`` with a timestamp before this has been handed on."""
        return self.tracks[symbol].watermark

    @property
    def all_connected(self) -> bool:
        return bool(self.connected) and all(self.connected.values())

    # -- REST ---------------------------------------------------------------------------
    def _retryable(self) -> tuple[type[BaseException], ...]:
        import ccxt

        return (ccxt.NetworkError, ccxt.ExchangeNotAvailable, ccxt.RequestTimeout, ccxt.DDoSProtection)

    async def _rest_call(self, fn: Any, what: str, *args: Any, **kwargs: Any) -> Any:
        policy = RetryPolicy(max_retries=5, base_delay=self.retry.base_delay, max_delay=self.retry.max_delay)

        async def attempt() -> Any:
            async with self._rest:
                return await fn(*args, **kwargs)

        return await policy.run(attempt, self._retryable(), what=f"{self.exchange} {what}")

    async def _fetch(self, symbol: str, since_ms: int | None, limit: int, params: dict[str, Any]) -> list[Any]:
        rows = await self._rest_call(
            self.client.fetch_trades, f"fetch_trades {symbol}", symbol, since_ms, limit, params
        )
        return list(rows)

    async def _fetch_from(self, symbol: str, since_ms: int, until_ms: int) -> list[dict[str, Any]]:
        """Every trade from ``since_ms`` up to now: hour windows by time (Binance's cap on
        ``startTime``..``endTime``), and once a page comes back full, pages by aggregate id."""
        out: list[dict[str, Any]] = []
        cursor = since_ms
        while True:
            rows = await self._fetch(symbol, cursor, _REST_LIMIT, {})
            out += rows
            while len(rows) == _REST_LIMIT:  # by id from here: those pages run up to now
                rows = await self._fetch(symbol, None, _REST_LIMIT, {"fromId": int(rows[-1]["id"]) + 1})
                out += rows
                if len(rows) < _REST_LIMIT:
                    return out
            if cursor + _HOUR_MS >= until_ms:
                return out
            cursor += _HOUR_MS

    async def _start_symbol(self, symbol: str) -> None:
        """The starting point: trades since ``start_ms`` are handed on, the track starts before them."""
        track = self.tracks[symbol]
        asked_at = self.now_ms()
        since = asked_at if self.start_ms is None else min(self.start_ms, asked_at)
        for _attempt in range(3):
            ids, ts, price, amount, buy = expand_aggregates(await self._fetch_from(symbol, since, asked_at))
            keep = ts >= since
            if keep.any():
                first = int(np.argmax(keep))
                self._deliver(track.start_at(int(ids[first]) - 1, int(ts[first]), since))
                self._deliver(track.add(ids[keep], ts[keep], price[keep], amount[keep], buy[keep]))
                break
            # Nothing since: start after the most recent trade, if the symbol ever traded. When that
            # trade is itself from `since` on, it came between the two requests and starting after it
            # would lose it (and any before it): ask again from `since`.
            last = expand_aggregates(await self._fetch(symbol, None, 1, {}))
            if not len(last[0]):
                break
            if int(last[1].min()) < since:
                self._deliver(track.start_at(int(last[0][-1]), int(last[1][-1]), since))
                break
            asked_at = self.now_ms()
        if track.wait_for_start:  # REST gave no starting point (never traded): the socket's first trade starts it
            self._deliver(track.begin())
        track.covered(asked_at)

    async def verify(self, symbol: str) -> int:
        """Ask REST what ``symbol`` traded since its last known trade; returns the new watermark.

        Used when a chunk is due and the symbol has not traded since (a dropped last message
        would otherwise go unseen until its next trade).
        """
        self.stats.verifications += 1
        await self._backfill(symbol)
        return self.tracks[symbol].watermark

    async def _backfill(self, symbol: str) -> None:
        track = self.tracks[symbol]
        asked_at = self.now_ms()
        since = track.last_ts if track.last_ts is not None else asked_at
        ids, ts, price, amount, buy = expand_aggregates(await self._fetch_from(symbol, since, asked_at))
        if track.last_id is None and len(ids) == 0:
            track.covered(asked_at)
            return
        new = ids > (track.last_id if track.last_id is not None else -1)
        self.stats.backfilled += int(new.sum())
        self._deliver(track.add(ids[new], ts[new], price[new], amount[new], buy[new]))
        track.covered(asked_at)

    def _fix_gap(self, symbol: str) -> None:
        """Fetch a hole's trades after ``reorder_wait`` (a swapped message closes it first), once at a time."""
        if symbol in self._fixing:
            return

        async def fix() -> None:
            try:
                await asyncio.sleep(self.reorder_wait)
                while self.tracks[symbol].missing() is not None:
                    self.stats.backfills += 1
                    await self._backfill(symbol)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - logged; the next hole or verify retries
                self.stats.errors[f"backfill:{symbol}"] = f"{type(err).__name__}: {err}"
                log.warning("%s %s: backfill failed: %s", self.exchange, symbol, err)
            finally:
                self._fixing.pop(symbol, None)

        self._fixing[symbol] = asyncio.create_task(fix(), name=f"backfill:{symbol}")

    # -- the sockets ----------------------------------------------------------------------
    def _deliver(self, batch: TradeBatch | None) -> None:
        if batch is not None and len(batch):
            self.stats.trades += len(batch)
            self.on_trades(batch)

    def _ingest(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self.stats.messages += 1
        symbol = rows[0]["symbol"]
        track = self.tracks.get(symbol)
        if track is None:
            return
        n = len(rows)
        ids = np.fromiter((int(r["id"]) for r in rows), dtype=np.int64, count=n)
        ts = np.fromiter((r["timestamp"] for r in rows), dtype=np.int64, count=n)
        price = np.fromiter((r["price"] for r in rows), dtype=np.float64, count=n)
        amount = np.fromiter((r["amount"] for r in rows), dtype=np.float64, count=n)
        buy = np.fromiter((r["side"] == "buy" for r in rows), dtype=bool, count=n)
        self._deliver(track.add(ids, ts, price, amount, buy))
        if track.missing() is not None:
            self._fix_gap(symbol)

    async def _watch(self, group: int, symbols: list[str]) -> None:
        """One socket's loop: watch, hand on, and on any error back off and watch again (resubscribing)."""
        failures = 0
        self.connected[group] = False
        while True:
            try:
                rows = await self.client.watch_trades_for_symbols(symbols)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - every socket failure is handled the same way
                self.connected[group] = False
                self.stats.reconnects += 1
                self.stats.errors[f"socket:{group}"] = f"{type(err).__name__}: {str(err)[:200]}"
                wait = self.retry.delay(min(failures, 10))
                failures += 1
                log.info("%s socket %d: %s; reconnecting in %.2f s", self.exchange, group, err, wait)
                await asyncio.sleep(wait)
                continue
            # After a reconnect the first trade of an active symbol shows the hole (fetched then);
            # a quiet symbol's chunks wait for verify(). Either way nothing is assumed complete.
            self.connected[group] = True
            failures = 0
            self._ingest(rows)
