"""A fake Binance for the trade-stream tests: REST + WebSocket on 127.0.0.1, with planted faults.

It is :class:`feeds.loopback.LoopbackExchange` (the protocol: ``SUBSCRIBE`` requests and their
``{"result": null, "id": n}`` answers, raw ``trade`` payloads one per message, ping frames that
ccxt must answer, ``aggTrades`` for REST backfills) plus what a test wants to control exactly:

* ``drop_ids`` / ``duplicate_ids``: trade ids whose message is never sent / sent twice;
* ``swap_ids``: trade ids whose message is sent after the next one of the same push;
* ``disconnect_all()`` (from the base): close every socket from the server side now;
* the seeded rate faults of :class:`feeds.loopback.StreamFaults` (drops, duplicates, swaps,
  a disconnect every N market seconds), as the soak test and the demo use them.

The tape comes from :func:`feeds.synthetic_trades.generate_trades` (pumps made of bursts of
same-millisecond buy fills, hard negatives) or any frame with ``symbol, id, timestamp, price,
amount, side``. Other stream kinds (klines) can be served by adding a builder to
``stream_kinds``::

    tape = generate_trades(3, minutes=20, seed=1)
    clock = ReplayClock(tape.start_ms + 60_000, speed=30)
    async with FakeBinanceWS(tape.trades, clock) as fake:
        stream = TradeStream("binance", tape.symbols, on_trades, ccxt_config=fake.ccxt_config(), now_ms=clock.now_ms)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from feeds.loopback import LoopbackExchange, ReplayClock, StreamFaults

__all__ = ["FakeBinanceWS", "ReplayClock", "StreamFaults"]


class FakeBinanceWS(LoopbackExchange):
    """The loopback exchange with per-trade-id message faults for tests."""

    def __init__(self, trades: pd.DataFrame, clock: ReplayClock, **kwargs: Any) -> None:
        super().__init__(trades, clock, **kwargs)
        self.drop_ids: set[int] = set()
        self.duplicate_ids: set[int] = set()
        self.swap_ids: set[int] = set()
        self.stream_kinds["trade"] = self._faulty_trade_messages

    def _faulty_trade_messages(self, positions: np.ndarray) -> list[tuple[str, str]]:
        ids = self._id[positions]
        keep = positions[~np.isin(ids, list(self.drop_ids))] if self.drop_ids else positions
        self.dropped += len(positions) - len(keep)
        messages = self._trade_messages(keep)
        kept_ids = self._id[keep].tolist()
        out: list[tuple[str, str]] = []
        held: tuple[str, str] | None = None
        for trade_id, message in zip(kept_ids, messages, strict=True):
            if trade_id in self.swap_ids and held is None:
                held = message
                self.reordered += 1
                continue
            out.append(message)
            if held is not None:
                out.append(held)
                held = None
            if trade_id in self.duplicate_ids:
                out.append(message)
                self.duplicated += 1
        if held is not None:
            out.append(held)
        return out
