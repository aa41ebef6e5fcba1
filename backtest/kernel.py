"""The trade scheduler: which events become trades, and when each trade ends.

This is the one path-dependent step of a backtest (an event while in a
position is ignored, so whether event k trades depends on where trade k-1
ended), so it is a small numba kernel that walks the *events*, not the bars:
its cost grows with the number of trades times their length, and every
column of a parameter sweep goes through the same call.

Timing rules (no look-ahead by construction):

* an event's bar ``t`` is the bar whose close revealed it; the earliest
  entry is the open of ``t + 1``;
* a time stop of ``h`` bars exits at the open of ``entry + h``;
* stops (take-profit, stop-loss, trailing) are watched from the bar after
  the entry bar: a gap through the level fills at that bar's open, otherwise
  at the level; when a bar touches both stop-loss and take-profit, the
  stop-loss is assumed to come first (the pessimistic reading);
* the trailing level follows the best high (long) / low (short) of the bars
  already closed, never the current bar's;
* a trade still open after the last bar exits at the last bar's close,
  reported as exit bar ``n`` (one past the data);
* an event on a trade's exit bar may open the next trade.

Fills, fees and slippage are *not* applied here: the caller turns the
schedule into orders and vectorbt executes them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["EXIT_KINDS", "schedule_trades"]

EXIT_KINDS = ("time", "stop_loss", "take_profit", "trailing_stop", "end_of_data")
_TIME, _SL, _TP, _TRAIL, _END = 0, 1, 2, 3, 4


@njit(cache=True, nogil=True)
def _schedule(
    open_,
    high,
    low,
    close,
    ev_ptr,
    ev_bar,
    ev_score,
    col_sym,
    col_ev,
    col_min_score,
    col_hold,
    col_tp,
    col_sl,
    col_trail,
    col_short,
    out_col,
    out_entry,
    out_exit,
    out_price,
    out_kind,
):  # pragma: no cover - compiled
    n = open_.shape[0]
    k_out = 0
    for c in range(col_sym.shape[0]):
        s = col_sym[c]
        short = col_short[c]
        hold = col_hold[c]
        tp = col_tp[c]
        sl = col_sl[c]
        trail = col_trail[c]
        free_from = -1
        for k in range(ev_ptr[col_ev[c]], ev_ptr[col_ev[c] + 1]):
            b = ev_bar[k]
            if b < free_from or ev_score[k] < col_min_score[c]:
                continue
            e = b + 1
            if e >= n:
                break
            entry = open_[e, s]
            stop_at = n if hold <= 0 else min(e + hold, n)
            exit_bar = stop_at
            kind = _TIME
            price = np.nan
            best = max(entry, high[e, s]) if not short else min(entry, low[e, s])
            for j in range(e + 1, stop_at):
                o = open_[j, s]
                if not short:
                    lvl = -np.inf
                    lkind = _SL
                    if sl == sl:
                        lvl = entry * (1.0 - sl)
                    if trail == trail and best * (1.0 - trail) > lvl:
                        lvl = best * (1.0 - trail)
                        lkind = _TRAIL
                    tp_lvl = entry * (1.0 + tp) if tp == tp else np.inf
                    if o <= lvl:
                        price, kind = o, lkind
                    elif o >= tp_lvl:
                        price, kind = o, _TP
                    elif low[j, s] <= lvl:
                        price, kind = lvl, lkind
                    elif high[j, s] >= tp_lvl:
                        price, kind = tp_lvl, _TP
                    if high[j, s] > best:
                        best = high[j, s]
                else:
                    lvl = np.inf
                    lkind = _SL
                    if sl == sl:
                        lvl = entry * (1.0 + sl)
                    if trail == trail and best * (1.0 + trail) < lvl:
                        lvl = best * (1.0 + trail)
                        lkind = _TRAIL
                    tp_lvl = entry * (1.0 - tp) if tp == tp else -np.inf
                    if o >= lvl:
                        price, kind = o, lkind
                    elif o <= tp_lvl:
                        price, kind = o, _TP
                    elif high[j, s] >= lvl:
                        price, kind = lvl, lkind
                    elif low[j, s] <= tp_lvl:
                        price, kind = tp_lvl, _TP
                    if low[j, s] < best:
                        best = low[j, s]
                if kind != _TIME:
                    exit_bar = j
                    break
            if kind == _TIME:
                if exit_bar >= n:
                    exit_bar = n
                    price = close[n - 1, s]
                    kind = _END
                else:
                    price = open_[exit_bar, s]
            out_col[k_out] = c
            out_entry[k_out] = e
            out_exit[k_out] = exit_bar
            out_price[k_out] = price
            out_kind[k_out] = kind
            k_out += 1
            free_from = exit_bar
            if exit_bar >= n:
                break
    return k_out


def schedule_trades(
    prices: dict[str, np.ndarray],
    ev_ptr: np.ndarray,
    ev_bar: np.ndarray,
    ev_score: np.ndarray,
    columns: dict[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """Every trade of every column, oldest first within a column.

    Parameters
    ----------
    prices : dict
        ``open``, ``high``, ``low``, ``close``: float arrays of shape (n_bars, n_symbols).
    ev_ptr : ndarray, shape (n_lists + 1,)
        CSR offsets: event list ``i`` is ``ev_bar[ev_ptr[i]:ev_ptr[i+1]]``, sorted by bar.
    ev_bar, ev_score : ndarray, shape (n_events,)
        Event bar index and score.
    columns : dict
        Per-column parameters, each of shape (n_columns,): ``sym`` (price column), ``ev``
        (event list; defaults to ``sym``), ``min_score``
        (-inf: none), ``hold`` (0: none), ``tp``/``sl``/``trail`` (NaN: none), ``short`` (bool).

    Returns
    -------
    dict of ndarray, each of shape (n_trades,)
        ``col``, ``entry`` (bar), ``exit`` (bar; ``n_bars`` means the last bar's close),
        ``price`` (exit price before slippage), ``kind`` (index into :data:`EXIT_KINDS`).
    """
    sym = np.ascontiguousarray(columns["sym"], dtype=np.int64)
    ev = np.ascontiguousarray(columns.get("ev", sym), dtype=np.int64)
    per_list = np.diff(ev_ptr)
    cap = int(per_list[ev].sum()) if len(ev) else 0
    out = {
        "col": np.empty(cap, np.int64),
        "entry": np.empty(cap, np.int64),
        "exit": np.empty(cap, np.int64),
        "price": np.empty(cap, np.float64),
        "kind": np.empty(cap, np.int64),
    }
    count = _schedule(
        np.ascontiguousarray(prices["open"], dtype=np.float64),
        np.ascontiguousarray(prices["high"], dtype=np.float64),
        np.ascontiguousarray(prices["low"], dtype=np.float64),
        np.ascontiguousarray(prices["close"], dtype=np.float64),
        np.ascontiguousarray(ev_ptr, dtype=np.int64),
        np.ascontiguousarray(ev_bar, dtype=np.int64),
        np.ascontiguousarray(ev_score, dtype=np.float64),
        sym,
        ev,
        np.ascontiguousarray(columns["min_score"], dtype=np.float64),
        np.ascontiguousarray(columns["hold"], dtype=np.int64),
        np.ascontiguousarray(columns["tp"], dtype=np.float64),
        np.ascontiguousarray(columns["sl"], dtype=np.float64),
        np.ascontiguousarray(columns["trail"], dtype=np.float64),
        np.ascontiguousarray(columns["short"], dtype=np.bool_),
        out["col"],
        out["entry"],
        out["exit"],
        out["price"],
        out["kind"],
    )
    return {key: value[:count] for key, value in out.items()}
