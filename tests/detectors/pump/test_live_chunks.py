"""The incremental chunk features of the live stream equal the batch ``trades_to_chunks`` features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.pump.features import LA_MORGIA_COLUMNS, causal_windows, trades_to_chunks
from detectors.pump.live_chunks import ChunkBook
from feeds.synthetic_trades import generate_trades


def _feed(
    book: ChunkBook, trades: pd.DataFrame, step_ms: int, close_lag_ms: int, rng: np.random.Generator
) -> pd.DataFrame:
    """Hand trades over in slices of ``step_ms`` (random split points per symbol), closing what is due each time."""
    out = []
    t0, t1 = int(trades["timestamp"].min()), int(trades["timestamp"].max())
    for t in range(t0, t1 + 2 * book.chunk_ms, step_ms):
        part = trades[(trades["timestamp"] >= t - step_ms) & (trades["timestamp"] < t)]
        for symbol, rows in part.groupby("symbol", sort=False, observed=True):
            cut = int(rng.integers(0, len(rows) + 1))  # two messages per slice, split anywhere
            for piece in (rows.iloc[:cut], rows.iloc[cut:]):
                book.add_trades(
                    str(symbol),
                    piece["timestamp"].to_numpy(),
                    piece["price"].to_numpy(),
                    piece["amount"].to_numpy(),
                    (piece["side"] == "buy").to_numpy(),
                )
        out.append(book.close_until(t - close_lag_ms).frame())
    return pd.concat(out, ignore_index=True)


@pytest.mark.parametrize("chunk_s,window", [(15, 20), (5, 60), (60, 3)])
def test_incremental_chunk_features_equal_batch_trades_to_chunks(chunk_s: int, window: int) -> None:
    tape = generate_trades(5, minutes=45, seed=3, pumps_per_hour=2, negatives_per_hour=2)
    book = ChunkBook(chunk_s * 1000, window, history=8)
    live = _feed(book, tape.trades, 7_000, 2_500, np.random.default_rng(0))
    for symbol in tape.symbols:
        batch = trades_to_chunks(tape.for_symbol(symbol), f"{chunk_s}s", window=window)
        mine = live[live["symbol"] == symbol]
        mine = mine.set_index(pd.DatetimeIndex(pd.to_datetime(mine["start_ms"], unit="ms", utc=True)))
        # the stream goes on closing (empty) chunks after the last trade; the batch stops there
        mine = mine[mine.index <= batch.index[-1]]
        assert len(mine) == len(batch) and (mine.index == batch.index).all()  # every chunk, once, in order
        # pandas' rolling std runs an add/remove update that leaves ~1e-6 where the exact value is 0
        np.testing.assert_allclose(mine[LA_MORGIA_COLUMNS].to_numpy(), batch.to_numpy(), rtol=1e-7, atol=1e-5)


def test_empty_chunks_carry_the_price_and_zero_orders() -> None:
    book = ChunkBook(15_000, 4)
    book.add_trades(
        "A", np.array([1_000, 1_000, 2_000]), np.array([1.0, 1.1, 1.2]), np.ones(3), np.array([1, 1, 0], bool)
    )
    closed = book.close_until(60_000).frame()
    assert closed["start_ms"].tolist() == [0, 15_000, 30_000, 45_000]
    assert closed["rush"].tolist() == [1, 0, 0, 0] and closed["trades"].tolist() == [2, 0, 0, 0]
    assert closed["price"].tolist() == [1.2] * 4  # the last trade of the last order (by time, then side)


def test_windows_at_close_match_causal_windows_of_the_batch_rows() -> None:
    tape = generate_trades(2, minutes=20, seed=4)
    book = ChunkBook(15_000, 20, history=12, steps=6)
    live = []
    trades = tape.trades
    for t in range(tape.start_ms, tape.end_ms + 30_000, 15_000):
        part = trades[(trades["timestamp"] >= t - 15_000) & (trades["timestamp"] < t)]
        for symbol, rows in part.groupby("symbol", sort=False, observed=True):
            book.add_trades(str(symbol), rows["timestamp"].to_numpy(), rows["price"].to_numpy(),
                            rows["amount"].to_numpy(), (rows["side"] == "buy").to_numpy())  # fmt: skip
        live.append(book.close_until(t))
    symbol = tape.symbols[0]
    batch = trades_to_chunks(tape.for_symbol(symbol), "15s", window=20).to_numpy()
    want = causal_windows(batch, np.zeros(len(batch)), 6)
    got = np.concatenate([c.windows[[s == symbol for s in c.symbols]] for c in live if len(c)])[: len(want)]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-5)


def test_memory_is_bounded_by_symbols_window_and_history() -> None:
    book = ChunkBook(15_000, 20, history=40, steps=8)
    for k in range(300):  # 75 minutes of one trade per chunk
        book.add_trades("A", np.array([k * 15_000 + 1]), np.array([1.0]), np.array([1.0]), np.array([True]))
        book.close_until((k + 1) * 15_000)
    assert book.pending_trades() == 0
    assert book._features.shape == (1, 40, len(LA_MORGIA_COLUMNS)) and book._counts.shape == (1, 20, 5)
