"""Putting one symbol's trades back in order: duplicates out, gaps found, completeness tracked.

Binance numbers the trades of a symbol consecutively, so a stream that lost, repeated or
swapped messages shows it in the ids. :class:`SequenceTrack` takes trades from any source (the
WebSocket, a REST backfill, both at once, in any order) and hands on only the next consecutive
ones, each exactly once. It also keeps the *watermark*: every trade with a timestamp below it
has been handed on. The stream job closes a chunk only when the watermark has passed its end,
so a chunk is never scored with trades missing.

Pure and synchronous (no I/O, no clock of its own): the stream (:mod:`feeds.trade_stream`)
decides when to fetch what a gap is missing, and tells the track what a REST answer proved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["SequenceTrack", "TradeBatch"]


@dataclass(frozen=True)
class TradeBatch:
    """Consecutive trades of one symbol (ids ``ids[0] .. ids[-1]`` with none missing), oldest first."""

    symbol: str
    ids: np.ndarray  # int64
    timestamp: np.ndarray  # int64 epoch ms
    price: np.ndarray  # float64
    amount: np.ndarray  # float64
    is_buy: np.ndarray  # bool: the taker bought

    def __len__(self) -> int:
        return len(self.ids)


class SequenceTrack:
    """The delivery state of one symbol's trade ids.

    Parameters
    ----------
    symbol : the symbol (carried into the batches).
    max_held : trades held beyond a gap before the oldest held are given up on (bounds memory
        when a backfill keeps failing; giving up moves the next expected id past the hole, so the
        watermark may only pass the hole when a REST answer has covered it).
    """

    def __init__(self, symbol: str, *, max_held: int = 50_000, wait_for_start: bool = False) -> None:
        self.symbol = symbol
        self.max_held = max_held
        # With ``wait_for_start`` nothing is handed on before ``start_at``/``begin``: a socket's first
        # message may come before the REST answer that says where the stream starts, and trades
        # handed on from it could not be followed by the older ones that answer brings.
        self.wait_for_start = wait_for_start
        self.last_id: int | None = None  # highest id handed on; all ids below it too
        self.last_ts: int | None = None  # its timestamp
        self.watermark = -1  # every trade with timestamp < watermark has been handed on
        self._held: dict[int, tuple[int, float, float, bool]] = {}
        self.duplicates = 0
        self.out_of_order = 0
        self.gaps_seen = 0
        self.given_up = 0
        self._in_gap = False

    # -- state ------------------------------------------------------------------------
    @property
    def held(self) -> int:
        return len(self._held)

    def missing(self) -> tuple[int, int] | None:
        """The id range ``(first, last)`` the oldest gap lacks, None without a gap."""
        if not self._held or self.last_id is None:
            return None
        first_held = min(self._held)
        if first_held <= self.last_id + 1:
            return None
        return self.last_id + 1, first_held - 1

    def start_at(self, last_id: int, last_ts: int, watermark: int) -> TradeBatch | None:
        """Begin after trade ``last_id`` (a REST snapshot): earlier ids are not wanted.

        Returns the held trades that now follow on, if any.
        """
        self.wait_for_start = False
        self.last_id, self.last_ts = int(last_id), int(last_ts)
        self.watermark = max(self.watermark, int(watermark))
        self._held = {i: t for i, t in self._held.items() if i > self.last_id}
        return self._release()

    def begin(self) -> TradeBatch | None:
        """Stop waiting for a starting point (REST knew none): the lowest held id starts the track."""
        self.wait_for_start = False
        if self.last_id is None and self._held:
            self.last_id = min(self._held) - 1
            return self._release()
        return None

    # -- trades in --------------------------------------------------------------------
    def add(
        self, ids: np.ndarray, timestamp: np.ndarray, price: np.ndarray, amount: np.ndarray, is_buy: np.ndarray
    ) -> TradeBatch | None:
        """Take trades in any order (duplicates allowed); return the newly consecutive ones, if any.

        Before the track has a starting point (``start_at``) the lowest id of the first call
        starts it.
        """
        if len(ids) == 0:
            return None
        ids = np.asarray(ids, dtype=np.int64)
        waiting = self.last_id is None and self.wait_for_start
        if self.last_id is None and not waiting:
            first = int(ids.min())
            self.last_id = first - 1
        prev = -1
        for i, t, p, a, b in zip(
            ids.tolist(), timestamp.tolist(), price.tolist(), amount.tolist(), is_buy.tolist(), strict=True
        ):
            if (self.last_id is not None and i <= self.last_id) or i in self._held:
                self.duplicates += 1
                continue
            if i < prev:
                self.out_of_order += 1
            prev = i
            self._held[i] = (int(t), float(p), float(a), bool(b))
        if len(self._held) > self.max_held:
            self._give_up(len(self._held) - self.max_held)
        if self.last_id is None:  # waiting for the starting point
            return None
        return self._release()

    def _release(self) -> TradeBatch | None:
        assert self.last_id is not None
        batch = None
        if self.last_id + 1 in self._held:
            run = []
            nxt = self.last_id + 1
            while nxt in self._held:
                run.append((nxt, *self._held.pop(nxt)))
                nxt += 1
            ids = np.array([r[0] for r in run], dtype=np.int64)
            ts = np.array([r[1] for r in run], dtype=np.int64)
            self.last_id, self.last_ts = int(ids[-1]), int(ts[-1])
            # trades of this millisecond may still be arriving; everything before it is complete
            self.watermark = max(self.watermark, self.last_ts)
            batch = TradeBatch(
                self.symbol,
                ids,
                ts,
                np.array([r[2] for r in run], dtype=np.float64),
                np.array([r[3] for r in run], dtype=np.float64),
                np.array([r[4] for r in run], dtype=bool),
            )
        gap = self.missing() is not None
        if gap and not self._in_gap:
            self.gaps_seen += 1
        self._in_gap = gap
        return batch

    def _give_up(self, count: int) -> None:
        """Skip past the oldest hole(s) so held trades can flow again (memory bound).

        Only reached when backfills keep failing: the chunks around the hole then lack those
        trades, and ``given_up`` says so.
        """
        self.given_up += 1
        self.last_id = sorted(self._held)[0] - 1

    def covered(self, up_to_ms: int) -> None:
        """A REST answer proved every trade with timestamp < ``up_to_ms`` is known (after adding it)."""
        if self.missing() is None:
            self.watermark = max(self.watermark, int(up_to_ms))
