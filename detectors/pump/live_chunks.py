"""La Morgia chunk features computed incrementally from a live trade stream, for many symbols at once.

:func:`detectors.pump.features.trades_to_chunks` computes the features of a whole trade
history in one pandas pass. A live stream cannot redo that every few seconds for hundreds of
symbols, so :class:`ChunkBook` keeps, per symbol, only what the next chunk needs:

* the trades of chunks not yet closed (they arrive in trade-id order, possibly a few chunks
  ahead of the one being closed);
* a ring of the last ``window`` closed chunks' counts (rush orders, orders, volume, last and
  max price), from which the rolling mean and std are recomputed when a chunk closes;
* a ring of the last ``history`` feature rows (what the model's window and the alert chart read).

Memory is therefore bounded by ``symbols x (window + history)`` plus the trades of the open
chunk. Closing a chunk for all symbols is one numpy pass over their pending trades (a sort and a
few ``bincount``/``reduceat`` calls), not a loop over trades. The result equals
``trades_to_chunks(trades, chunk, window)`` row for row (``tests/detectors/pump/test_live_chunks.py``
checks it), including its rules: buy trades sharing a millisecond are one order and a *rush*
order when it has more than one fill; an empty chunk has zero orders and the previous price;
a symbol has rows from the chunk of its first trade on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.pump.features import LA_MORGIA_COLUMNS

__all__ = ["COUNT_COLUMNS", "ChunkBook", "ClosedChunks", "chunk_windows"]

#: The per-chunk counts kept for each symbol (and stored with every closed chunk).
COUNT_COLUMNS = ["rush", "trades", "volume", "price", "price_max"]
_RUSH, _TRADES, _VOLUME, _PRICE, _PRICE_MAX = range(5)


@dataclass(frozen=True)
class ClosedChunks:
    """Chunks closed by one call: parallel arrays, one row per (symbol, chunk)."""

    symbols: list[str]
    start_ms: np.ndarray  # (k,) chunk start, epoch ms
    counts: np.ndarray  # (k, 5) COUNT_COLUMNS
    features: np.ndarray  # (k, 12) LA_MORGIA_COLUMNS
    closed: np.ndarray  # (k,) chunks the symbol had closed up to and including this one
    windows: np.ndarray | None = None  # (k, steps, 12) each row's model window, taken when it closed

    def __len__(self) -> int:
        return len(self.symbols)

    def frame(self) -> pd.DataFrame:
        """As a frame: ``symbol, start_ms``, the counts and the features."""
        out = pd.DataFrame(self.features, columns=LA_MORGIA_COLUMNS)
        for i, col in enumerate(COUNT_COLUMNS):
            out.insert(i, col, self.counts[:, i])
        out.insert(0, "start_ms", self.start_ms)
        out.insert(0, "symbol", self.symbols)
        return out


def _time_of_day(start_ms: np.ndarray) -> np.ndarray:
    """(k, 4) hour sin/cos and minute sin/cos of each chunk start (UTC), as ``trades_to_chunks`` has them."""
    seconds = (np.asarray(start_ms, dtype=np.int64) // 1000) % 86_400
    hour = (seconds // 3600).astype(float)
    minute = ((seconds % 3600) // 60).astype(float)
    return np.column_stack(
        [
            np.sin(2 * np.pi * hour / 24),
            np.cos(2 * np.pi * hour / 24),
            np.sin(2 * np.pi * minute / 60),
            np.cos(2 * np.pi * minute / 60),
        ]
    )


class ChunkBook:
    """Rolling chunk state of many symbols; trades in, closed chunks (counts and features) out.

    Parameters
    ----------
    chunk_ms : chunk length in milliseconds (La Morgia et al. used 5-25 s).
    window : rolling window of the features, in chunks (``trades_to_chunks``' ``window``).
    history : feature rows kept per symbol for the model's window and the charts.
    steps : when > 0, every closed row comes with its model window of this many rows
        (``ClosedChunks.windows``), taken at the moment it closed, so chunks closed together
        after a backfill are each scored on what was known at their own close.
    """

    def __init__(self, chunk_ms: int, window: int, history: int = 40, steps: int = 0) -> None:
        if chunk_ms < 1000 or window < 1 or history < 1:
            raise ValueError(
                f"ChunkBook: need chunk_ms >= 1000, window >= 1, history >= 1, got {chunk_ms}, {window}, {history}"
            )
        self.chunk_ms = int(chunk_ms)
        self.window = int(window)
        self.history = int(history)
        if steps > self.history:
            raise ValueError(f"ChunkBook: steps {steps} > history {history}")
        self.steps = int(steps)
        self._index: dict[str, int] = {}
        self._names: list[str] = []
        self._counts = np.zeros((0, self.window, 5))
        self._closed = np.zeros(0, dtype=np.int64)  # chunks closed since the symbol's first trade
        self._next = np.zeros(0, dtype=np.int64)  # start of the next chunk to close; -1 before the first trade
        self._last_price = np.zeros(0)
        self._features = np.zeros((0, self.history, len(LA_MORGIA_COLUMNS)))
        self._feature_ts = np.zeros((0, self.history), dtype=np.int64)
        self._pending: list[list[np.ndarray]] = []  # per symbol: blocks of (ts, price, amount, is_buy) rows

    # -- symbols --------------------------------------------------------------------------
    @property
    def symbols(self) -> list[str]:
        return list(self._names)

    def _row(self, symbol: str) -> int:
        row = self._index.get(symbol)
        if row is not None:
            return row
        row = len(self._names)
        self._index[symbol] = row
        self._names.append(symbol)
        self._counts = np.concatenate([self._counts, np.zeros((1, self.window, 5))])
        self._closed = np.r_[self._closed, 0]
        self._next = np.r_[self._next, -1]
        self._last_price = np.r_[self._last_price, np.nan]
        self._features = np.concatenate([self._features, np.zeros((1, self.history, len(LA_MORGIA_COLUMNS)))])
        self._feature_ts = np.concatenate([self._feature_ts, np.full((1, self.history), -1, dtype=np.int64)])
        self._pending.append([])
        return row

    def add_symbol(self, symbol: str) -> None:
        """Track ``symbol`` (it has rows from the chunk of its first trade on)."""
        self._row(symbol)

    def next_chunk_ms(self, symbol: str) -> int | None:
        """Start of the next chunk of ``symbol`` to close, None before its first trade."""
        row = self._index.get(symbol)
        if row is None or self._next[row] < 0:
            return None
        return int(self._next[row])

    def pending_trades(self) -> int:
        """Trades held for chunks not yet closed (all symbols)."""
        return int(sum(len(b) for blocks in self._pending for b in blocks))

    # -- trades in --------------------------------------------------------------------------
    def add_trades(
        self, symbol: str, timestamp: np.ndarray, price: np.ndarray, amount: np.ndarray, is_buy: np.ndarray
    ) -> None:
        """Append ``symbol``'s next trades (in trade-id order, so in time order).

        Trades older than the next chunk to close are ignored: that chunk is closed and
        rewriting it would change features already scored (a stream only hands over trades
        it knows to be complete and in order, so this is a guard, not a path).
        """
        row = self._row(symbol)
        ts = np.asarray(timestamp, dtype=np.int64)
        if len(ts) == 0:
            return
        if self._next[row] < 0:
            self._next[row] = int(ts[0]) - int(ts[0]) % self.chunk_ms
        keep = ts >= self._next[row]
        if not keep.all():
            ts, price, amount, is_buy = ts[keep], price[keep], amount[keep], is_buy[keep]
        block = np.column_stack([ts.astype(float), np.asarray(price, float), np.asarray(amount, float), is_buy])
        self._pending[row].append(block)

    # -- chunks out -------------------------------------------------------------------------
    def close_until(self, until_ms: dict[str, int] | int, symbols: list[str] | None = None) -> ClosedChunks:
        """Close every chunk that ends at or before ``until_ms`` (one value, or one per symbol).

        Only symbols that have had a trade get rows. A symbol whose trades are known to be
        complete only up to an earlier time is simply given that earlier ``until_ms``.
        """
        names = self._names if symbols is None else [s for s in symbols if s in self._index]
        limits = {s: int(until_ms if isinstance(until_ms, (int, np.integer)) else until_ms.get(s, -1)) for s in names}
        parts: list[ClosedChunks] = []
        while True:
            due = [
                self._index[s]
                for s in names
                if self._next[self._index[s]] >= 0 and self._next[self._index[s]] + self.chunk_ms <= limits[s]
            ]
            if not due:
                break
            rows = np.asarray(due, dtype=np.int64)
            # one round per distinct chunk start (symbols that started at different times, or lag behind)
            for start in np.unique(self._next[rows]):
                parts.append(self._close_round(rows[self._next[rows] == start], int(start)))
        if not parts:
            n_feat = len(LA_MORGIA_COLUMNS)
            return ClosedChunks(
                [],
                np.zeros(0, np.int64),
                np.zeros((0, 5)),
                np.zeros((0, n_feat)),
                np.zeros(0, np.int64),
                np.zeros((0, self.steps, n_feat)) if self.steps else None,
            )
        return ClosedChunks(
            [s for p in parts for s in p.symbols],
            np.concatenate([p.start_ms for p in parts]),
            np.concatenate([p.counts for p in parts]),
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.closed for p in parts]),
            np.concatenate([p.windows for p in parts]) if self.steps else None,  # type: ignore[misc]
        )

    def _take_chunk(self, rows: np.ndarray, end: int) -> tuple[np.ndarray, np.ndarray]:
        """The pending trades of ``rows`` before ``end`` (removed from the buffers) and their row positions."""
        taken, owner = [], []
        for k, row in enumerate(rows.tolist()):
            blocks = self._pending[row]
            if not blocks:
                continue
            data = blocks[0] if len(blocks) == 1 else np.concatenate(blocks)
            cut = int(np.searchsorted(data[:, 0], end, side="left"))
            taken.append(data[:cut])
            owner.append(np.full(cut, k, dtype=np.int64))
            self._pending[row] = [data[cut:]] if cut < len(data) else []
        if not taken:
            return np.zeros((0, 4)), np.zeros(0, dtype=np.int64)
        return np.concatenate(taken), np.concatenate(owner)

    def _close_round(self, rows: np.ndarray, start: int) -> ClosedChunks:
        end = start + self.chunk_ms
        n = len(rows)
        trades, owner = self._take_chunk(rows, end)
        counts = np.zeros((n, 5))
        counts[:, _PRICE] = self._last_price[rows]
        counts[:, _PRICE_MAX] = self._last_price[rows]
        if len(trades):
            ts, price, amount, buy = trades[:, 0], trades[:, 1], trades[:, 2], trades[:, 3]
            # orders = (symbol, millisecond, side) groups, in the order trades_to_chunks sorts them
            order = np.lexsort((np.arange(len(ts)), buy, ts, owner))
            o_own, o_ts, o_buy = owner[order], ts[order], buy[order]
            new = np.r_[True, (o_own[1:] != o_own[:-1]) | (o_ts[1:] != o_ts[:-1]) | (o_buy[1:] != o_buy[:-1])]
            starts = np.flatnonzero(new)
            fills = np.diff(np.r_[starts, len(order)])
            g_own, g_buy = o_own[starts], o_buy[starts]
            rush = (g_buy == 1) & (fills > 1)
            counts[:, _RUSH] = np.bincount(g_own, weights=rush, minlength=n)
            counts[:, _TRADES] = np.bincount(g_own, minlength=n)
            counts[:, _VOLUME] = np.bincount(owner, weights=amount, minlength=n)
            has = np.bincount(owner, minlength=n) > 0
            last_pos = np.r_[np.flatnonzero(o_own[1:] != o_own[:-1]), len(order) - 1]  # last trade of each symbol
            counts[o_own[last_pos], _PRICE] = price[order][last_pos]
            top = np.full(n, -np.inf)
            np.maximum.at(top, owner, price)
            counts[has, _PRICE_MAX] = top[has]
        self._last_price[rows] = counts[:, _PRICE]
        slot = self._closed[rows] % self.window
        self._counts[rows, slot] = counts
        self._closed[rows] += 1
        self._next[rows] = end
        features = self._features_of(rows, start)
        hslot = (self._closed[rows] - 1) % self.history
        self._features[rows, hslot] = features
        self._feature_ts[rows, hslot] = start
        windows = (
            chunk_windows(self._features, self._closed, self.history, rows.tolist(), self.steps) if self.steps else None
        )
        return ClosedChunks(
            [self._names[r] for r in rows.tolist()],
            np.full(n, start, np.int64),
            counts,
            features,
            self._closed[rows].copy(),
            windows,
        )

    def _features_of(self, rows: np.ndarray, start: int) -> np.ndarray:
        """Rolling mean/std (ddof 0) over each symbol's last ``window`` closed chunks, plus time of day."""
        ring = self._counts[rows]  # (n, window, 5)
        filled = np.minimum(self._closed[rows], self.window)
        valid = np.arange(self.window)[None, :] < filled[:, None]
        w = valid[..., None].astype(float)
        mean = (ring * w).sum(axis=1) / filled[:, None]
        std = np.sqrt(np.maximum((((ring - mean[:, None, :]) * w) ** 2).sum(axis=1) / filled[:, None], 0.0))
        tod = np.repeat(_time_of_day(np.array([start])), len(rows), axis=0)
        return np.column_stack(
            [
                std[:, _RUSH],
                mean[:, _RUSH],
                std[:, _TRADES],
                std[:, _VOLUME],
                mean[:, _VOLUME],
                std[:, _PRICE],
                mean[:, _PRICE],
                mean[:, _PRICE_MAX],
                tod,
            ]
        )

    def recent_counts(self, symbol: str, rows: int) -> np.ndarray:
        """The last ``rows`` (<= ``window``) closed chunks' counts of ``symbol``, oldest first, shape (<= rows, 5)."""
        row = self._index[symbol]
        n = int(min(self._closed[row], self.window, rows))
        slots = np.arange(self._closed[row] - n, self._closed[row]) % self.window
        return self._counts[row, slots].copy()

    # -- windows for the model ---------------------------------------------------------------
    def recent(self, symbol: str, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """The last ``rows`` (<= ``history``) feature rows of ``symbol`` and their chunk starts, oldest first."""
        row = self._index[symbol]
        n = int(min(self._closed[row], self.history, rows))
        if n == 0:
            return np.zeros((0, len(LA_MORGIA_COLUMNS))), np.zeros(0, dtype=np.int64)
        slots = (np.arange(self._closed[row] - n, self._closed[row])) % self.history
        return self._features[row, slots], self._feature_ts[row, slots]

    def windows(self, symbols: list[str], steps: int) -> np.ndarray:
        """(len(symbols), steps, 12): each symbol's last ``steps`` feature rows, edge-padded at its start.

        The same windows :func:`detectors.pump.features.causal_windows` builds for a symbol's latest row.
        """
        if steps > self.history:
            raise ValueError(f"ChunkBook.windows: steps {steps} > history {self.history}")
        return chunk_windows(self._features, self._closed, self.history, [self._index[s] for s in symbols], steps)


def chunk_windows(features: np.ndarray, closed: np.ndarray, history: int, rows: list[int], steps: int) -> np.ndarray:
    """Gather ring-buffer windows: for each row, its last ``steps`` entries, the oldest repeated while short."""
    rows_ = np.asarray(rows, dtype=np.int64)
    if len(rows_) == 0:
        return np.zeros((0, steps, features.shape[2]))
    n_closed = closed[rows_]
    back = np.arange(steps - 1, -1, -1)[None, :]  # steps-1 .. 0 rows before the newest
    pos = np.maximum(n_closed[:, None] - 1 - back, 0)  # edge-pad with the first row
    pos = np.maximum(pos, n_closed[:, None] - history)  # never older than the ring holds
    return features[rows_[:, None], pos % history]
