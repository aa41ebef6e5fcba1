"""The last ``history_bars`` bars of every watched market, in memory, in step with the database.

Why: every cycle scores the same window of every symbol, shifted by one bar. Reading it
back from the database each time (hundreds of thousands of rows at 500 symbols) cost more
than scoring it. The ring holds exactly that window; the cycle writes into it the rows it
has just committed (and deletes what it deleted), so the frames it hands to the detectors
are the frames the database would give. The database stays the source of truth: the ring
is filled from it the first time a market is seen, a restart rebuilds it, and a window the
ring does not cover is read from the database (:meth:`covers`).

Layout: one group per (exchange, timeframe) with arrays ``values`` (symbols, bars, 5) and
``slot_ts`` (symbols, bars). A bar opening at ``ts`` lives in slot ``(ts // step) % bars``;
``slot_ts`` records which bar a slot holds, so a slot overwritten by a newer bar, or never
written (a hole the exchange has), is simply not part of any window. Writes and reads are
vectorised over symbols; the only per-symbol work is building each frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from storage.candles import CANDLE_COLUMNS

__all__ = ["CandleRing"]

_EMPTY = np.iinfo(np.int64).min
_COLUMNS = list(CANDLE_COLUMNS)


def _index(ts: np.ndarray) -> pd.DatetimeIndex:
    """The frame index ``storage.candles`` builds: UTC, nanoseconds, named ``time``."""
    return pd.DatetimeIndex(pd.to_datetime(ts, unit="ms", utc=True), name="time").as_unit("ns")


@dataclass
class _Group:
    step: int
    bars: int
    rows: dict[str, int] = field(default_factory=dict)
    values: np.ndarray = field(init=False)
    slot_ts: np.ndarray = field(init=False)
    newest: int = _EMPTY  # open time of the newest bar ever written

    def __post_init__(self) -> None:
        self.values = np.full((0, self.bars, len(_COLUMNS)), np.nan)
        self.slot_ts = np.full((0, self.bars), _EMPTY, dtype=np.int64)

    def row(self, symbol: str) -> int:
        row = self.rows.get(symbol)
        if row is None:
            row = self.rows[symbol] = len(self.rows)
            if row >= len(self.values):  # grow by doubling: appends stay cheap at thousands of symbols
                extra = max(16, len(self.values))
                self.values = np.concatenate([self.values, np.full((extra, self.bars, len(_COLUMNS)), np.nan)])
                self.slot_ts = np.concatenate([self.slot_ts, np.full((extra, self.bars), _EMPTY, dtype=np.int64)])
        return row


class CandleRing:
    """Per (exchange, timeframe): the newest ``bars`` bar slots of each symbol."""

    def __init__(self, bars: int) -> None:
        if bars < 1:
            raise ValueError(f"CandleRing: bars must be >= 1, got {bars}")
        self.bars = bars
        self._groups: dict[tuple[str, str], _Group] = {}

    def _group(self, exchange: str, timeframe: str, step: int) -> _Group:
        group = self._groups.get((exchange, timeframe))
        if group is None:
            group = self._groups[(exchange, timeframe)] = _Group(step, self.bars)
        return group

    # -- what is known -----------------------------------------------------------------------
    def known(self, exchange: str, timeframe: str) -> set[str]:
        """Symbols whose window has been filled from the database (or written since)."""
        group = self._groups.get((exchange, timeframe))
        return set(group.rows) if group is not None else set()

    def covers(self, exchange: str, timeframe: str, start_ms: int) -> bool:
        """True when bars from ``start_ms`` on cannot have been overwritten (the window is inside the ring)."""
        group = self._groups.get((exchange, timeframe))
        if group is None:
            return False
        return group.newest == _EMPTY or start_ms > group.newest - group.bars * group.step

    def last_ts(self, exchange: str, timeframe: str, symbols: Sequence[str]) -> dict[str, int | None]:
        """Open time of each symbol's newest bar in the ring (None when it has none)."""
        group = self._groups.get((exchange, timeframe))
        out: dict[str, int | None] = {}
        for symbol in symbols:
            row = None if group is None else group.rows.get(symbol)
            newest = _EMPTY if row is None else int(group.slot_ts[row].max())  # type: ignore[union-attr]
            out[symbol] = None if newest == _EMPTY else newest
        return out

    def count_new(self, exchange: str, timeframe: str, frames: Mapping[str, pd.DataFrame]) -> int:
        """How many of the bars in ``frames`` the ring does not hold yet (call before :meth:`write`)."""
        group = self._groups.get((exchange, timeframe))
        total = 0
        for symbol, frame in frames.items():
            ts = pd.DatetimeIndex(frame.index).as_unit("ms").asi8
            row = None if group is None else group.rows.get(symbol)
            if row is None:
                total += len(np.unique(ts))
                continue
            assert group is not None
            held = group.slot_ts[row, (ts // group.step) % group.bars] == ts
            total += len(np.unique(ts[~held]))
        return total

    # -- writing -----------------------------------------------------------------------------
    def write(self, exchange: str, timeframe: str, step: int, frames: Mapping[str, pd.DataFrame]) -> None:
        """Put bars (frames indexed by UTC open time, OHLCV columns) in the ring; also marks the symbols known.

        Call it with what was just committed (or loaded): the ring must never hold a bar the
        database does not. Bars older than the ring's reach are ignored.
        """
        group = self._group(exchange, timeframe, step)
        for symbol, frame in frames.items():
            row = group.row(symbol)
            if frame.empty:
                continue
            ts = pd.DatetimeIndex(frame.index).as_unit("ms").asi8
            values = frame[_COLUMNS].to_numpy(dtype="float64")
            group.newest = max(group.newest, int(ts.max()))
            keep = ts > group.newest - group.bars * step
            ts, values = ts[keep], values[keep]
            slots = (ts // step) % group.bars
            newer = ts >= group.slot_ts[row, slots]  # an old bar never overwrites a newer one in its slot
            group.slot_ts[row, slots[newer]] = ts[newer]
            group.values[row, slots[newer]] = values[newer]

    def mark_known(self, exchange: str, timeframe: str, step: int, symbols: Iterable[str]) -> None:
        """Record symbols whose (possibly empty) window has been read from the database."""
        group = self._group(exchange, timeframe, step)
        for symbol in symbols:
            group.row(symbol)

    def delete(self, exchange: str, timeframe: str, symbol: str, ts: Iterable[int]) -> None:
        """Forget bars deleted from the database."""
        group = self._groups.get((exchange, timeframe))
        row = None if group is None else group.rows.get(symbol)
        if row is None:
            return
        assert group is not None
        for t in ts:
            slot = (int(t) // group.step) % group.bars
            if group.slot_ts[row, slot] == int(t):
                group.slot_ts[row, slot] = _EMPTY
                group.values[row, slot] = np.nan

    def forget(self, exchange: str, timeframe: str) -> None:
        """Drop a whole group (it is rebuilt from the database on next use)."""
        self._groups.pop((exchange, timeframe), None)

    # -- reading -----------------------------------------------------------------------------
    def frames(
        self, exchange: str, timeframe: str, symbols: Sequence[str], *, start_ms: int, end_ms: int
    ) -> dict[str, pd.DataFrame]:
        """Bars with open time in ``[start_ms, end_ms)`` per symbol, as ``load_candles_many`` returns them.

        Symbols without bars in the range are left out. Raises ``ValueError`` when the range
        reaches further back than the ring (ask :meth:`covers` first).
        """
        group = self._groups.get((exchange, timeframe))
        if group is None:
            return {}
        if not self.covers(exchange, timeframe, start_ms):
            raise ValueError(f"CandleRing: {exchange} {timeframe} does not reach back to {start_ms}")
        step = group.step
        first = -(-start_ms // step) * step  # the first bar open >= start_ms
        grid = np.arange(first, end_ms, step, dtype=np.int64)[-group.bars :]
        present = [s for s in symbols if s in group.rows]
        if not present or not len(grid):
            return {}
        rows = np.fromiter((group.rows[s] for s in present), dtype=np.int64, count=len(present))
        slots = (grid // step) % group.bars
        valid = group.slot_ts[rows][:, slots] == grid[None, :]  # (symbols, bars)
        values = group.values[rows][:, slots]  # a copy: frames never alias the ring
        full_index = _index(grid)
        out: dict[str, pd.DataFrame] = {}
        counts = valid.sum(axis=1)
        for i, symbol in enumerate(present):
            if counts[i] == 0:
                continue
            if counts[i] == len(grid):  # the usual case: frames share one index object
                out[symbol] = pd.DataFrame(values[i], index=full_index, columns=_COLUMNS)
                continue
            mask = valid[i]
            first, last = int(np.argmax(mask)), len(mask) - int(np.argmax(mask[::-1]))
            if counts[i] == last - first:  # one run of bars (the newest not in yet, or a short history)
                out[symbol] = pd.DataFrame(values[i, first:last], index=full_index[first:last], columns=_COLUMNS)
            else:
                out[symbol] = pd.DataFrame(values[i][mask], index=full_index[mask], columns=_COLUMNS)
        return out
