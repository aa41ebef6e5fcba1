"""Turn a trade schedule into vectorbt orders and read back fills, trades and equity.

The scheduler (:mod:`backtest.kernel`) decides *when*; vectorbt's
``Portfolio.from_orders`` (Rust engine when ``vectorbt[rust]`` is installed)
does the execution: slippage on the fill price, fees on the notional, cash
and position bookkeeping, trade records and the equity curve.

Two grids:

* the **bar grid** (:func:`execute_on_bars`): one row per candle plus one
  extra row after the last bar whose price is the last close, so that a trade
  entered at the last bar's open can still exit "at the last bar's close"
  (vectorbt takes one order per row and column). Gives the equity curve.
* the **trade-slot grid** (:func:`execute_on_slots`): row ``2k`` is trade k's
  entry, row ``2k+1`` its exit. Between trades an all-cash column's value does
  not move, so the fills, trade records and final value are the same as on
  the bar grid while the work scales with the number of trades, not bars.
  Sweeps use it: 1,000 parameter columns over a year of hourly bars would be
  ~9 million dense cells per price array.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TRADE_RETURN_DOC", "execute_on_bars", "execute_on_slots", "trades_from_records"]

TRADE_RETURN_DOC = "P&L over entry cost (fill x size + entry fees)"

_PERCENT, _AMOUNT = 2, 0


def _orders(
    sched: dict[str, np.ndarray],
    n_rows: int,
    n_cols: int,
    entry_row: np.ndarray,
    exit_row: np.ndarray,
    entry_price: np.ndarray,
    size: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size_arr = np.full((n_rows, n_cols), np.nan)
    price_arr = np.full((n_rows, n_cols), np.nan)
    type_arr = np.full((n_rows, n_cols), _AMOUNT, dtype=np.int64)
    col = sched["col"]
    size_arr[entry_row, col] = size
    type_arr[entry_row, col] = _PERCENT
    price_arr[entry_row, col] = entry_price
    size_arr[exit_row, col] = -np.inf
    price_arr[exit_row, col] = sched["price"]
    return size_arr, price_arr, type_arr


def _portfolio(close: pd.DataFrame, size_arr, price_arr, type_arr, direction, strategy) -> object:
    import vectorbt as vbt

    return vbt.Portfolio.from_orders(
        close,
        size=size_arr,
        price=price_arr,
        size_type=type_arr,
        direction=direction,
        fees=strategy.fees,
        slippage=strategy.slippage,
        init_cash=strategy.init_cash,
        freq=None,
    )


def execute_on_bars(
    index: pd.DatetimeIndex,
    prices: dict[str, np.ndarray],
    sched: dict[str, np.ndarray],
    col_sym: np.ndarray,
    col_short: np.ndarray,
    strategy: object,
) -> tuple[np.ndarray, np.ndarray, object]:
    """Run the schedule on the bar grid.

    Returns
    -------
    equity : ndarray, shape (n_bars, n_cols)
        Value at each bar's close; the last row is after the final liquidation.
    records : structured ndarray
        vectorbt exit-trade records (``entry_idx``/``exit_idx`` on the extended grid).
    portfolio : vectorbt.Portfolio
    """
    n = len(index)
    n_cols = len(col_sym)
    close = prices["close"][:, col_sym]
    close_ext = np.vstack([close, close[-1:]])
    step = index[-1] - index[-2] if n > 1 else pd.Timedelta(1, "ms")
    ext_index = index.append(pd.DatetimeIndex([index[-1] + step]))
    entry_price = prices["open"][sched["entry"], col_sym[sched["col"]]]
    size_arr, price_arr, type_arr = _orders(
        sched, n + 1, n_cols, sched["entry"], sched["exit"], entry_price, strategy.size
    )
    direction = np.where(col_short, 1, 0).astype(np.int64)[None, :]
    pf = _portfolio(pd.DataFrame(close_ext, index=ext_index), size_arr, price_arr, type_arr, direction, strategy)
    value = pf.value().to_numpy()
    equity = value[:n].copy()
    equity[-1] = value[n]
    return equity, pf.exit_trades.values, pf


def execute_on_slots(
    prices: dict[str, np.ndarray],
    sched: dict[str, np.ndarray],
    col_sym: np.ndarray,
    col_short: np.ndarray,
    strategy: object,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the schedule on the trade-slot grid (2 rows per trade).

    Returns
    -------
    final_value : ndarray, shape (n_cols,)
    records : structured ndarray
        vectorbt exit-trade records; ``entry_idx // 2`` is the trade's position within its column.
    """
    n_cols = len(col_sym)
    col = sched["col"]
    counts = np.bincount(col, minlength=n_cols)
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    k = np.arange(len(col)) - first[col]
    n_rows = max(2 * int(counts.max(initial=0)), 2)
    entry_price = prices["open"][sched["entry"], col_sym[col]]
    size_arr, price_arr, type_arr = _orders(sched, n_rows, n_cols, 2 * k, 2 * k + 1, entry_price, strategy.size)
    close = pd.DataFrame(price_arr).ffill().fillna(1.0).to_numpy()
    direction = np.where(col_short, 1, 0).astype(np.int64)[None, :]
    pf = _portfolio(pd.DataFrame(close), size_arr, price_arr, type_arr, direction, strategy)
    return pf.final_value().to_numpy(), pf.exit_trades.values


def trades_from_records(records: np.ndarray) -> dict[str, np.ndarray]:
    """Fill prices and returns of closed trades, return as P&L over entry cost (fees included)."""
    closed = records[records["status"] == 1]
    cost = closed["size"] * closed["entry_price"] + closed["entry_fees"]
    return {
        "col": closed["col"].astype(np.int64),
        "entry_idx": closed["entry_idx"].astype(np.int64),
        "exit_idx": closed["exit_idx"].astype(np.int64),
        "entry_price": closed["entry_price"],
        "exit_price": closed["exit_price"],
        "size": closed["size"],
        "pnl": closed["pnl"],
        "return": closed["pnl"] / cost,
    }
