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

import logging

import numpy as np
import pandas as pd

__all__ = ["TRADE_RETURN_DOC", "execute_on_bars", "execute_on_slots", "trades_from_records"]

TRADE_RETURN_DOC = "P&L over entry cost (fill x size + entry fees)"

log = logging.getLogger(__name__)
_PERCENT, _AMOUNT = 2, 0


def _orders(
    sched: dict[str, np.ndarray],
    col: np.ndarray,
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
        sched, sched["col"], n + 1, n_cols, sched["entry"], sched["exit"], entry_price, strategy.size
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
    *,
    lane_length: int = 1024,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run the schedule on a trade-slot grid (2 rows per trade).

    With percentage sizing a trade's return (P&L over entry cost) does not
    depend on the cash it starts with, so trades of different parameter
    columns can share a vectorbt column ("lane"): all trades are laid out
    back to back, ``lane_length`` per lane, and each column's total return is
    the product of ``1 + size * r`` over its trades. If a lane runs out of
    cash (a short blown through its stop), the trades are re-run with one
    vectorbt column per parameter column and totals taken from the cash.

    Returns
    -------
    total_return : ndarray, shape (n_cols,)
    trades : dict of ndarray, shape (n_filled,)
        ``col``, ``return``, ``pnl`` of each filled trade, in schedule order.
    """
    n_cols = len(col_sym)
    col = sched["col"]
    total = len(col)
    counts = np.bincount(col, minlength=n_cols)
    entry_price = prices["open"][sched["entry"], col_sym[col]]
    uniform = bool(np.all(col_short == col_short[0])) if n_cols else True
    if total and uniform:
        length = max(1, min(lane_length, total))
        t = np.arange(total)
        lane, slot = t // length, t % length
        n_lanes = int(lane[-1]) + 1
        size_arr, price_arr, type_arr = _orders(
            sched, lane, 2 * length, n_lanes, 2 * slot, 2 * slot + 1, entry_price, strategy.size
        )
        direction = np.int64(1 if col_short[0] else 0)
        pf = _portfolio(pd.DataFrame(price_arr), size_arr, price_arr, type_arr, direction, strategy)
        fills = trades_from_records(pf.exit_trades.values)
        if len(fills["col"]) == total:
            growth = np.ones(n_cols)
            has = counts > 0
            starts = np.concatenate(([0], np.cumsum(counts)[:-1]))[has]
            growth[has] = np.multiply.reduceat(1.0 + strategy.size * fills["return"], starts)
            return growth - 1.0, {"col": col, "return": fills["return"], "pnl": fills["pnl"]}
        log.warning("a packed lane ran out of cash; re-running one column per parameter set")
    first = np.concatenate(([0], np.cumsum(counts)[:-1]))
    k = np.arange(total) - first[col]
    n_rows = max(2 * int(counts.max(initial=0)), 2)
    size_arr, price_arr, type_arr = _orders(sched, col, n_rows, n_cols, 2 * k, 2 * k + 1, entry_price, strategy.size)
    direction = np.where(col_short, 1, 0).astype(np.int64)[None, :]
    pf = _portfolio(pd.DataFrame(price_arr), size_arr, price_arr, type_arr, direction, strategy)
    fills = trades_from_records(pf.exit_trades.values)
    final = strategy.init_cash + np.bincount(fills["col"], weights=fills["pnl"], minlength=n_cols)
    return final / strategy.init_cash - 1.0, {"col": fills["col"], "return": fills["return"], "pnl": fills["pnl"]}


def trades_from_records(records: np.ndarray) -> dict[str, np.ndarray]:
    """Fill prices and returns of closed trades, return as P&L over entry cost (fees included)."""
    closed_mask = records["status"] == 1
    closed = records if closed_mask.all() else records[closed_mask]
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
