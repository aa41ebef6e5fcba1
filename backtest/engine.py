"""``run_backtest``: events + candles + a strategy -> trades, equity, metrics, baselines.

Several symbols run as columns of one vectorbt portfolio (one column per
symbol, each with ``init_cash``); the portfolio line in reports is their sum.
Every result is compared with buy-and-hold over the same bars and with a
random-entry baseline that makes the same number of trades with the same
rules, so "the strategy made 12 %" always comes with "and chance made 9 %".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from backtest.events import events_to_csr, filter_events
from backtest.execution import execute_on_bars, trades_from_records
from backtest.kernel import EXIT_KINDS, schedule_trades
from backtest.metrics import compute_metrics, periods_per_year, trade_stats
from backtest.strategy import Strategy
from core.errors import BacktestError, InputError

__all__ = [
    "BacktestResult",
    "against_columns",
    "align_candles",
    "column_params",
    "price_arrays",
    "run_backtest",
    "select_symbols",
]

log = logging.getLogger(__name__)
PORTFOLIO = "portfolio"


@dataclass
class BacktestResult:
    """Everything a report needs; ``trades`` has one row per closed trade.

    ``metrics`` maps ``"strategy"``, ``"buy_and_hold"`` and ``"random"`` to
    the :data:`~backtest.metrics.METRIC_NAMES` of the whole portfolio;
    ``per_symbol`` maps each symbol to the strategy's metrics on it.
    """

    strategy: Strategy
    symbols: list[str]
    index: pd.DatetimeIndex
    bar_ms: int
    trades: pd.DataFrame
    equity: pd.DataFrame
    benchmark_equity: pd.Series
    metrics: dict[str, dict[str, float]]
    per_symbol: dict[str, dict[str, float]]
    random_p_value: float
    random_draws: int
    events_used: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: metrics plus every trade (NaN/inf become None)."""

        def clean(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, (float, np.floating)):
                return float(value) if math.isfinite(value) else None
            if isinstance(value, np.integer):
                return int(value)
            return value

        trades = [
            {
                "symbol": row.symbol,
                "direction": row.direction,
                "entry_ts": row.entry_ts.isoformat(),
                "entry_price": row.entry_price,
                "exit_ts": row.exit_ts.isoformat(),
                "exit_price": row.exit_price,
                "return": row.ret,
                "exit_reason": row.exit_reason,
            }
            for row in self.trades.rename(columns={"return": "ret"}).itertuples(index=False)
        ]
        return clean(
            {
                "strategy": self.strategy.params(),
                "symbols": self.symbols,
                "start": self.index[0].isoformat(),
                "end": self.index[-1].isoformat(),
                "bars": len(self.index),
                "events_used": self.events_used,
                "metrics": self.metrics,
                "per_symbol": self.per_symbol,
                "random_baseline": {"draws": self.random_draws, "p_value": self.random_p_value},
                "trades": trades,
                **self.extra,
            }
        )


def align_candles(candles: pd.DataFrame | Mapping[str, pd.DataFrame], symbol: str = "") -> dict[str, pd.DataFrame]:
    """Candle frames on one shared index (the bars every symbol has)."""
    frames = dict(candles) if isinstance(candles, Mapping) else {symbol.upper(): candles}
    if not frames:
        raise BacktestError("no candles given")
    out: dict[str, pd.DataFrame] = {}
    for name, frame in frames.items():
        if len(frame) < 2:
            raise BacktestError(f"{name or 'candles'}: need at least 2 bars, got {len(frame)}")
        if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
            raise BacktestError(f"{name or 'candles'}: index must be a UTC DatetimeIndex of bar open times")
        f = frame.copy()
        f.index = f.index.as_unit("ns")  # one unit whatever the source (CSV, database, date_range)
        out[name] = f
    index = None
    for f in out.values():
        index = f.index if index is None else index.intersection(f.index)
    assert index is not None
    if len(index) < 2:
        raise BacktestError(f"symbols {', '.join(frames)} share fewer than 2 bars")
    if any(len(f) != len(index) for f in out.values()):
        log.warning("symbols do not share every bar: using the %d bars they all have", len(index))
        out = {name: f.loc[index] for name, f in out.items()}
    return out


def select_symbols(frames: dict[str, pd.DataFrame], strategy: Strategy) -> dict[str, pd.DataFrame]:
    """The frames of the symbols the strategy trades (all when it names none)."""
    if strategy.symbols is None:
        return frames
    picked = {s: f for s, f in frames.items() if s in strategy.symbols}
    if not picked:
        raise InputError(f"strategy symbols {', '.join(strategy.symbols)} have no candles (have: {', '.join(frames)})")
    return picked


def price_arrays(frames: dict[str, pd.DataFrame]) -> dict[str, np.ndarray]:
    return {
        key: np.column_stack([f[key].to_numpy(dtype=np.float64) for f in frames.values()])
        for key in ("open", "high", "low", "close")
    }


def column_params(strategy: Strategy, n: int, sym: np.ndarray) -> dict[str, np.ndarray]:
    """Per-column kernel parameters for ``n`` columns of one strategy."""

    def fill(value: float | None) -> np.ndarray:
        return np.full(n, np.nan if value is None else value, dtype=np.float64)

    return {
        "sym": np.asarray(sym, dtype=np.int64),
        "min_score": np.full(n, -np.inf if strategy.min_score is None else strategy.min_score),
        "hold": np.full(n, strategy.hold_bars, dtype=np.int64),
        "tp": fill(strategy.take_profit),
        "sl": fill(strategy.stop_loss),
        "trail": fill(strategy.trailing_stop),
        "short": np.full(n, strategy.short, dtype=bool),
    }


def _match_kinds(sched: dict[str, np.ndarray], fills: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Exit reason of each filled trade.

    Every scheduled trade fills unless the column has no cash left (a short
    blown through its stop can leave it negative); those are skipped, logged.
    """
    sched_key = sched["col"] * (n + 2) + sched["entry"]
    fill_key = fills["col"] * (n + 2) + fills["entry_idx"]
    pos = np.searchsorted(sched_key, fill_key)
    if len(fill_key) != len(sched_key):
        log.warning(
            "%d of %d scheduled trades could not be filled (no cash left)",
            len(sched_key) - len(fill_key),
            len(sched_key),
        )
    return sched["kind"][pos]


def _bar_ms(index: pd.DatetimeIndex) -> int:
    return int(np.median(np.diff(index.as_unit("ms").asi8)))


def _held_bars(sched: dict[str, np.ndarray], n_cols: int) -> np.ndarray:
    return np.bincount(sched["col"], weights=sched["exit"] - sched["entry"], minlength=n_cols)


def _random_events(
    counts: np.ndarray, n: int, spacing: int, draws: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random event lists: for each (draw, symbol), ``counts[s]`` events at least ``spacing`` bars apart.

    Spaced by the strategy's longest holding period when that fits, so each
    event finds the strategy flat and the baseline makes as many trades as
    the strategy did; otherwise as widely as the data allows (then a few
    random events may land inside a trade and the baseline trades less; its
    ``trades`` metric says so).
    """
    per_symbol = []
    for k in (int(k) for k in counts):
        gap = max(1, min(spacing, (n - 2) // (k - 1))) if k > 1 else spacing
        room = max(1, n - 1 - (k - 1) * gap)
        per_symbol.append(np.sort(rng.integers(0, room, size=(draws, k)), axis=1) + np.arange(k) * gap)
    lists = [per_symbol[s][d] for d in range(draws) for s in range(len(counts))]
    ptr = np.concatenate(([0], np.cumsum([len(b) for b in lists]))).astype(np.int64)
    ev_bar = np.concatenate(lists).astype(np.int64) if lists else np.empty(0, np.int64)
    return ptr, ev_bar, np.zeros(len(ev_bar))


def _portfolio_metrics(equity: np.ndarray, init: float, returns: np.ndarray, held: float, ppy: float) -> dict:
    return compute_metrics(equity, init, returns, held, ppy)


def run_backtest(
    candles: pd.DataFrame | Mapping[str, pd.DataFrame],
    events: pd.DataFrame,
    strategy: Strategy,
    *,
    symbol: str = "",
    random_draws: int = 100,
    seed: int = 0,
) -> BacktestResult:
    """Backtest ``strategy`` on ``events`` over ``candles`` (one frame, or one per symbol).

    ``events`` is a frame as made by :func:`backtest.events.normalize_events`.
    Raises ``InputError`` for an event timestamp that is not on the candle grid.
    """
    _check_events_frame(events)
    frames = select_symbols(align_candles(candles, symbol), strategy)
    chosen = filter_events(events, strategy)
    col_short: np.ndarray | None = None
    if strategy.direction == "against":
        frames, chosen, col_short = against_columns(frames, chosen)
    symbols = list(frames)
    index = next(iter(frames.values())).index
    n, n_sym = len(index), len(symbols)
    prices = price_arrays(frames)
    bar_ms = _bar_ms(index)
    ppy = periods_per_year(bar_ms)

    ev_ptr, ev_bar, ev_score = events_to_csr(chosen, index, symbols)
    sym = np.arange(n_sym)
    cols = column_params(strategy, n_sym, sym)
    if col_short is not None:
        cols["short"] = col_short
    sched = schedule_trades(prices, ev_ptr, ev_bar, ev_score, cols)
    equity, records, _pf = execute_on_bars(index, prices, sched, sym, cols["short"], strategy)
    fills = trades_from_records(records)
    kinds = _match_kinds(sched, fills, n)

    exit_bar = np.minimum(fills["exit_idx"], n - 1)
    trades = pd.DataFrame(
        {
            "symbol": np.asarray(symbols, dtype=object)[fills["col"]],
            "direction": np.where(cols["short"][fills["col"]], "short", "long"),
            "entry_ts": index[fills["entry_idx"]],
            "entry_price": fills["entry_price"],
            "exit_ts": index[exit_bar],
            "exit_price": fills["exit_price"],
            "return": fills["return"],
            "pnl": fills["pnl"],
            "exit_reason": np.asarray(EXIT_KINDS, dtype=object)[kinds],
            "entry_bar": fills["entry_idx"],
            "exit_bar": fills["exit_idx"],
        }
    )
    held = _held_bars(sched, n_sym)
    init = strategy.init_cash
    per_symbol = {
        s: _portfolio_metrics(equity[:, i], init, trades["return"].to_numpy()[fills["col"] == i], held[i], ppy)
        for i, s in enumerate(symbols)
    }
    total_equity = equity.sum(axis=1)
    metrics = {
        "strategy": _portfolio_metrics(total_equity, init * n_sym, trades["return"].to_numpy(), held.sum() / n_sym, ppy)
    }

    # Buy and hold: one long trade per symbol, first open to last close, same costs.
    bh_sched = {
        "col": sym.copy(),
        "entry": np.zeros(n_sym, np.int64),
        "exit": np.full(n_sym, n, np.int64),
        "price": prices["close"][-1].copy(),
        "kind": np.full(n_sym, 4, np.int64),
    }
    bh_equity, bh_records, _ = execute_on_bars(index, prices, bh_sched, sym, np.zeros(n_sym, bool), strategy)
    bh_fills = trades_from_records(bh_records)
    bh_total = bh_equity.sum(axis=1)
    metrics["buy_and_hold"] = _portfolio_metrics(bh_total, init * n_sym, bh_fills["return"], n, ppy)

    # Random entries: as many trades per symbol as the strategy made, same exits and costs.
    counts = np.bincount(sched["col"], minlength=n_sym)
    draws = int(min(random_draws, max(10, 4_000_000 // max(1, (n + 1) * n_sym))))
    p_value = math.nan
    if counts.sum() > 0 and draws > 0:
        spacing = 1 + (strategy.hold_bars or max(1, int(np.median(sched["exit"] - sched["entry"]))))
        rng = np.random.default_rng(seed)
        r_ptr, r_bar, r_score = _random_events(counts, n, spacing, draws, rng)
        r_sym = np.tile(sym, draws)
        r_cols = column_params(strategy.replace(min_score=None), draws * n_sym, r_sym)
        r_cols["short"] = np.tile(cols["short"], draws)
        r_cols["ev"] = np.arange(draws * n_sym)
        r_sched = schedule_trades(prices, r_ptr, r_bar, r_score, r_cols)
        r_equity, r_records, _ = execute_on_bars(index, prices, r_sched, r_sym, r_cols["short"], strategy)
        r_fills = trades_from_records(r_records)
        r_held = _held_bars(r_sched, draws * n_sym).reshape(draws, n_sym).sum(axis=1) / n_sym
        per_draw = []
        draw_of_trade = r_fills["col"] // n_sym
        for d in range(draws):  # one metrics call per draw (<= 100), not per bar
            eq = r_equity[:, d * n_sym : (d + 1) * n_sym].sum(axis=1)
            per_draw.append(_portfolio_metrics(eq, init * n_sym, r_fills["return"][draw_of_trade == d], r_held[d], ppy))
        frame = pd.DataFrame(per_draw)
        metrics["random"] = {k: float(frame[k].replace([np.inf, -np.inf], np.nan).mean()) for k in frame.columns}
        # Per-trade statistics pool every draw's trades: a mean of per-draw profit factors is dominated by
        # draws with no losing trade (infinite) or one losing trade (zero).
        pooled = trade_stats(r_fills["return"])
        pooled["trades"] = len(r_fills["return"]) / draws
        metrics["random"].update(pooled)
        strat_total = metrics["strategy"]["total_return"]
        p_value = float((frame["total_return"] >= strat_total).mean())
    else:
        metrics["random"] = {k: math.nan for k in metrics["strategy"]}
        draws = 0

    eq_frame = pd.DataFrame(equity, index=index, columns=symbols)
    eq_frame[PORTFOLIO] = total_equity
    return BacktestResult(
        strategy=strategy,
        symbols=symbols,
        index=index,
        bar_ms=bar_ms,
        trades=trades,
        equity=eq_frame,
        benchmark_equity=pd.Series(bh_total, index=index, name="buy_and_hold"),
        metrics=metrics,
        per_symbol=per_symbol,
        random_p_value=p_value,
        random_draws=draws,
        events_used=int(len(ev_bar) if strategy.min_score is None else (ev_score >= strategy.min_score).sum()),
    )


AFTER_RISES, AFTER_FALLS = " (short after rises)", " (long after falls)"


def against_columns(
    frames: dict[str, pd.DataFrame], events: pd.DataFrame
) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, np.ndarray]:
    """Direction ``against``: each symbol becomes a short column fed by its up-move events and a long
    column fed by its down-move events (the events' ``move``); events with no known move are dropped.

    Returns the new frames, the events renamed to their column, and the per-column short flags.
    """
    if "move" not in events.columns:
        raise InputError("direction 'against' needs the events' 'move' (which way the market moved at each event)")
    move = events["move"].to_numpy(dtype="float64")
    known = np.isfinite(move) & (move != 0)
    if (~known).any():
        log.warning("direction 'against': %d event(s) without a known move are skipped", int((~known).sum()))
    out_frames: dict[str, pd.DataFrame] = {}
    shorts: list[bool] = []
    for name, frame in frames.items():
        for suffix, short in ((AFTER_RISES, True), (AFTER_FALLS, False)):
            out_frames[name + suffix] = frame
            shorts.append(short)
    kept = events.loc[known].copy()
    suffix = np.where(kept["move"].to_numpy() > 0, AFTER_RISES, AFTER_FALLS)
    if len(frames) == 1 and "" in set(kept["symbol"]):
        kept["symbol"] = kept["symbol"].where(kept["symbol"] != "", next(iter(frames)))
    kept["symbol"] = kept["symbol"].astype(str) + suffix
    return out_frames, kept, np.asarray(shorts, dtype=bool)


def _check_events_frame(events: pd.DataFrame) -> None:
    missing = [c for c in ("timestamp", "score", "symbol", "detector", "severity") if c not in events.columns]
    if missing:
        raise InputError(f"events frame is missing column(s) {', '.join(missing)}; use normalize_events()")
