"""The live trade stream: the real ccxt.pro client against a fake Binance speaking REST and WebSocket.

Every test replays a synthetic tape in accelerated time and checks that each trade of the
replayed span reached ``on_trades`` exactly once, in id order, whatever the socket did.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from core.errors import DataSourceError
from feeds.retry import RetryPolicy
from feeds.synthetic_trades import generate_trades
from feeds.trade_sequence import TradeBatch
from feeds.trade_stream import TradeStream, expand_aggregates
from tests.fakes.binance_ws import FakeBinanceWS, ReplayClock, StreamFaults

SPEED = 40.0  # market seconds per wall second
FAST_RETRY = RetryPolicy(max_retries=10**6, base_delay=0.02, max_delay=0.2)


def _tape(symbols: int = 3, seed: int = 1):  # noqa: ANN202
    return generate_trades(symbols, minutes=15, seed=seed, pumps_per_hour=0, negatives_per_hour=0, rate_range=(1, 3))


async def _run(fake: FakeBinanceWS, tape, clock: ReplayClock, market_seconds: float, during=None):  # noqa: ANN001, ANN202
    """Stream for ``market_seconds``; returns (batches, stream, start_ms, complete_ms)."""
    got: list[TradeBatch] = []
    stream = TradeStream(
        "binance", tape.symbols, got.append, ccxt_config=fake.ccxt_config(), now_ms=clock.now_ms,
        start_ms=clock.now_ms(), retry=FAST_RETRY, reorder_wait=0.05,
    )  # fmt: skip
    await stream.start()
    start = stream.start_ms
    try:
        if during is not None:
            await during(stream)
        await asyncio.sleep(market_seconds / SPEED)
        for symbol in tape.symbols:  # what every symbol is known complete up to
            await stream.verify(symbol)
        complete = {s: stream.complete_until(s) for s in tape.symbols}
    finally:
        await stream.stop()
    return got, stream, start, complete


def _assert_complete(got: list[TradeBatch], tape, start: int, complete: dict[str, int]) -> None:  # noqa: ANN001
    trades = tape.trades
    for symbol in tape.symbols:
        ids = np.concatenate([b.ids for b in got if b.symbol == symbol] or [np.zeros(0, np.int64)])
        assert (np.diff(ids) == 1).all(), f"{symbol}: ids not consecutive or repeated"
        want = trades[(trades["symbol"] == symbol) & (trades["timestamp"] >= start)]
        want = want[want["timestamp"] < complete[symbol]]["id"].to_numpy()
        assert len(want) > 20
        assert np.isin(want, ids).all(), f"{symbol}: {np.setdiff1d(want, ids)[:5]} missing"


async def test_stream_hands_on_every_trade_once_and_in_order() -> None:
    tape = _tape()
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with FakeBinanceWS(tape.trades, clock) as fake:
        got, stream, start, complete = await _run(fake, tape, clock, 120)
    _assert_complete(got, tape, start, complete)
    assert fake.subscribe_requests == 1 and stream.stats.reconnects == 0
    assert all(c >= start + 100_000 for c in complete.values())


class _SlowFirstQuery(FakeBinanceWS):
    """Answers each symbol's first ``aggTrades`` query late, so trades happen before the next request."""

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self._slowed: set[str] = set()

    async def _agg_trades(self, request):  # noqa: ANN001, ANN202
        symbol = request.query.get("symbol", "")
        if "startTime" in request.query and symbol not in self._slowed:
            self._slowed.add(symbol)
            response = await super()._agg_trades(request)  # what had happened when it was asked
            await asyncio.sleep(0.25)  # 10 market seconds go by before the answer arrives
            return response
        return await super()._agg_trades(request)


async def test_trades_made_while_the_start_was_being_fetched_are_not_lost() -> None:
    tape = _tape(seed=5)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with _SlowFirstQuery(tape.trades, clock) as fake:
        now = clock.now_ms()  # the socket loses the first 10 s of trades: only REST can bring them
        fake.drop_ids = set(tape.trades[tape.trades["timestamp"].between(now, now + 10_000)]["id"].tolist())
        got, _stream, start, complete = await _run(fake, tape, clock, 60)
    _assert_complete(got, tape, start, complete)


async def test_reconnects_resubscribes_and_backfills_after_a_server_disconnect() -> None:
    tape = _tape(seed=2)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)

    async def cut(stream: TradeStream) -> None:
        await asyncio.sleep(30 / SPEED)
        await fake.disconnect_all()

    async with FakeBinanceWS(tape.trades, clock) as fake:
        got, stream, start, complete = await _run(fake, tape, clock, 90, during=cut)
    _assert_complete(got, tape, start, complete)
    assert fake.disconnects == 1 and fake.subscribe_requests >= 2  # subscribed again on the new socket
    assert stream.stats.reconnects >= 1 and stream.stats.backfilled > 0
    assert fake.rest_requests.get("/api/v3/aggTrades", 0) > len(tape.symbols)


async def test_dropped_messages_are_fetched_over_rest() -> None:
    tape = _tape(seed=3)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with FakeBinanceWS(tape.trades, clock) as fake:
        later = tape.trades[tape.trades["timestamp"] > clock.now_ms() + 20_000]
        fake.drop_ids = set(later["id"].iloc[::37].tolist()[:12])
        got, stream, start, complete = await _run(fake, tape, clock, 90)
    _assert_complete(got, tape, start, complete)
    assert fake.dropped >= 5 and stream.stats.backfilled >= fake.dropped
    assert sum(t.gaps_seen for t in stream.tracks.values()) >= 1


async def test_duplicated_and_swapped_messages_come_out_once_in_order() -> None:
    tape = _tape(seed=4)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with FakeBinanceWS(tape.trades, clock) as fake:
        later = tape.trades[tape.trades["timestamp"] > clock.now_ms() + 10_000]["id"]
        fake.duplicate_ids = set(later.iloc[::23].tolist()[:15])
        fake.swap_ids = set(later.iloc[5::29].tolist()[:15])
        got, stream, start, complete = await _run(fake, tape, clock, 90)
    _assert_complete(got, tape, start, complete)
    assert fake.duplicated >= 5 and fake.reordered >= 5
    assert sum(t.duplicates for t in stream.tracks.values()) >= fake.duplicated


async def test_ccxt_answers_the_servers_pings() -> None:
    tape = _tape(symbols=1, seed=5)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with FakeBinanceWS(tape.trades, clock, ping_interval=0.05, pong_timeout=5.0) as fake:
        await _run(fake, tape, clock, 20)
    assert fake.pongs_received >= 3 and fake.disconnects == 0


async def test_rate_faults_lose_nothing() -> None:
    tape = _tape(seed=6)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    faults = StreamFaults(disconnect_every_s=30, drop_rate=0.01, duplicate_rate=0.01, reorder_rate=0.01, seed=1)
    async with FakeBinanceWS(tape.trades, clock, faults=faults) as fake:
        got, stream, start, complete = await _run(fake, tape, clock, 120)
    _assert_complete(got, tape, start, complete)
    assert fake.disconnects >= 3 and fake.dropped > 0 and fake.duplicated > 0


async def test_watch_rejects_unknown_symbol() -> None:
    tape = _tape(symbols=1)
    clock = ReplayClock(tape.start_ms + 60_000, speed=SPEED)
    async with FakeBinanceWS(tape.trades, clock) as fake:
        stream = TradeStream("binance", ["NOPE/USDT"], lambda b: None, ccxt_config=fake.ccxt_config(), retry=FAST_RETRY)
        with pytest.raises(DataSourceError, match="NOPE/USDT"):
            await stream.start()


def test_aggregates_expand_to_their_trade_ids() -> None:
    rows = [
        {"id": "7", "timestamp": 1000, "price": 2.0, "amount": 3.0, "side": "buy", "info": {"f": 10, "l": 12}},
        {"id": "8", "timestamp": 1001, "price": 2.1, "amount": 1.0, "side": "sell", "info": {"f": 13, "l": 13}},
    ]
    ids, ts, price, amount, buy = expand_aggregates(rows)
    assert ids.tolist() == [10, 11, 12, 13] and ts.tolist() == [1000, 1000, 1000, 1001]
    assert amount.tolist() == [1.0, 1.0, 1.0, 1.0] and buy.tolist() == [True, True, True, False]
