"""Parameter sweeps: every combination x every symbol as columns of one vectorbt run.

The grid (for example ``min_score`` x ``hold_bars`` x ``stop_loss``) becomes
``n_combos * n_symbols`` columns. One scheduler call walks the events of all
of them, and one ``Portfolio.from_orders`` call executes them on the
trade-slot grid (see :mod:`backtest.execution`), so 10,000 columns cost
about as much as their trades, not as ``10,000 x n_bars`` dense cells.
Metrics here are the trade-based ones plus total return and exposure; run
the chosen combination through :func:`backtest.engine.run_backtest` for the
equity curve, drawdown and ratios.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from backtest.engine import align_candles, column_params, price_arrays, select_symbols
from backtest.events import events_to_csr, filter_events
from backtest.execution import execute_on_slots
from backtest.kernel import schedule_trades
from backtest.report import figure_png
from backtest.strategy import Strategy, make_strategy
from core.errors import InputError

__all__ = ["SWEEPABLE", "SweepResult", "heatmap_png", "parse_grid", "run_sweep"]

log = logging.getLogger(__name__)

SWEEPABLE = {
    "min_score": "min_score",
    "hold_bars": "hold",
    "take_profit": "tp",
    "stop_loss": "sl",
    "trailing_stop": "trail",
}


@dataclass
class SweepResult:
    """``table``: one row per combination (parameter columns, then metrics), in grid order."""

    strategy: Strategy
    params: list[str]
    table: pd.DataFrame
    columns: int
    symbols: list[str]


def parse_grid(items: Sequence[str], strategy_name: str = "fixed_hold") -> dict[str, list[Any]]:
    """``["hold_bars=6,12,24", "stop_loss=none,0.02"]`` -> typed value lists (validated like ``--param``)."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not values.strip():
            raise InputError(f"--grid {item!r}: expected key=v1,v2,...")
        if key not in SWEEPABLE:
            raise InputError(f"--grid {item!r}: {key!r} cannot be swept; sweepable: {', '.join(SWEEPABLE)}")
        grid[key] = [getattr(make_strategy(strategy_name, {key: v}), key) for v in values.split(",")]
    return grid


def run_sweep(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    events: pd.DataFrame,
    strategy: Strategy,
    grid: Mapping[str, Sequence[Any]],
    *,
    symbol: str = "",
) -> SweepResult:
    """Every combination of ``grid`` (a subset of :data:`SWEEPABLE`) on every symbol, in one pass."""
    unknown = [k for k in grid if k not in SWEEPABLE]
    if unknown:
        raise InputError(f"cannot sweep {', '.join(unknown)}; sweepable: {', '.join(SWEEPABLE)}")
    frames = select_symbols(align_candles(candles, symbol), strategy)
    symbols = list(frames)
    index = next(iter(frames.values())).index
    n, n_sym = len(index), len(symbols)
    prices = price_arrays(frames)
    ev_ptr, ev_bar, ev_score = events_to_csr(filter_events(events, strategy), index, symbols)

    names = list(grid)
    combos = list(itertools.product(*(grid[k] for k in names))) or [()]
    for combo in combos:  # validates each combination once (cheap: dataclass checks)
        strategy.replace(**dict(zip(names, combo, strict=True)))
    n_combo = len(combos)
    n_cols = n_combo * n_sym
    cols = column_params(strategy, n_cols, np.tile(np.arange(n_sym), n_combo))
    for j, key in enumerate(names):
        values = np.array([np.nan if c[j] is None else c[j] for c in combos], dtype=np.float64)
        if key == "min_score":
            values = np.where(np.isnan(values), -np.inf, values)
        cols[SWEEPABLE[key]] = np.repeat(values, n_sym).astype(cols[SWEEPABLE[key]].dtype)
    sched = schedule_trades(prices, ev_ptr, ev_bar, ev_score, cols)
    col_return, fills = execute_on_slots(prices, sched, cols["sym"], cols["short"], strategy)

    combo_of = fills["col"] // n_sym
    r = fills["return"]
    trades = np.bincount(combo_of, minlength=n_combo)
    wins = np.bincount(combo_of, weights=r > 0, minlength=n_combo)
    gains = np.bincount(combo_of, weights=np.where(r > 0, r, 0.0), minlength=n_combo)
    losses = -np.bincount(combo_of, weights=np.where(r < 0, r, 0.0), minlength=n_combo)
    sum_r = np.bincount(combo_of, weights=r, minlength=n_combo)
    held = np.bincount(sched["col"] // n_sym, weights=sched["exit"] - sched["entry"], minlength=n_combo)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(combos, columns=names) if names else pd.DataFrame(index=range(1))
        table["total_return"] = col_return.reshape(n_combo, n_sym).mean(axis=1)  # equal cash per symbol
        table["trades"] = trades
        table["win_rate"] = np.where(trades > 0, wins / trades, np.nan)
        table["profit_factor"] = np.where(losses > 0, gains / losses, np.where(gains > 0, np.inf, np.nan))
        table["expectancy"] = np.where(trades > 0, sum_r / trades, np.nan)
        table["exposure"] = held / (n * n_sym)
    return SweepResult(strategy=strategy, params=names, table=table, columns=n_cols, symbols=symbols)


def heatmap_png(
    result: SweepResult,
    *,
    x: str | None = None,
    y: str | None = None,
    metric: str = "total_return",
    path: str | Path | None = None,
) -> bytes:
    """A heat map of ``metric`` over two swept parameters (mean over any others); PNG bytes, also written to path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = result.params
    if not params:
        raise InputError("heat map needs at least one swept parameter")
    x = x or params[-1]
    y = y or (params[0] if len(params) > 1 else None)
    table = result.table.copy()
    for key in (x, y):
        if key is not None:
            table[key] = table[key].astype(object).where(table[key].notna(), "none")
    if y is None:
        pivot = table.groupby(x, sort=False)[metric].mean().to_frame().T
        pivot.index = [metric]
    else:
        pivot = table.pivot_table(index=y, columns=x, values=metric, aggfunc="mean", sort=False)
    values = pivot.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * values.shape[1], 1.2 + 0.6 * values.shape[0]), dpi=100)
    finite = values[np.isfinite(values)]
    vmax = float(np.abs(finite).max()) if finite.size else 1.0
    im = ax.imshow(values, cmap="RdYlGn", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.set_xticks(range(values.shape[1]), [str(v) for v in pivot.columns])
    ax.set_yticks(range(values.shape[0]), [str(v) for v in pivot.index])
    ax.set_xlabel(x)
    if y is not None:
        ax.set_ylabel(y)
    if values.size <= 400:
        for (i, j), v in np.ndenumerate(values):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(f"{result.strategy.name}: {metric}")
    fig.tight_layout()
    return figure_png(fig, path)
