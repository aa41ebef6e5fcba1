"""Performance metrics as pure functions of arrays.

No vectorbt, no pandas state, no clock: the same numbers come out for the
strategy, buy-and-hold and the random baseline, and tests can check them by
hand. Undefined values (a Sharpe ratio of a flat curve, a profit factor with
no trades) are NaN rather than a made-up 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "METRIC_NAMES",
    "cagr",
    "compute_metrics",
    "max_drawdown",
    "periods_per_year",
    "sharpe",
    "sortino",
    "trade_stats",
]

METRIC_NAMES = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "expectancy",
    "trades",
    "exposure",
)

_YEAR_MS = 365.25 * 86_400_000


def periods_per_year(bar_ms: int) -> float:
    """Bars in a year of a 24/7 market (crypto never closes)."""
    return _YEAR_MS / bar_ms


def _bar_returns(equity: np.ndarray, init: float) -> np.ndarray:
    values = np.concatenate(([init], np.asarray(equity, dtype=np.float64)))
    return values[1:] / values[:-1] - 1.0


def sharpe(bar_returns: np.ndarray, ppy: float) -> float:
    """Annualised Sharpe ratio (risk-free 0) of per-bar returns, shape (n,)."""
    r = np.asarray(bar_returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(ppy)) if sd > 0 else math.nan


def sortino(bar_returns: np.ndarray, ppy: float) -> float:
    """Annualised Sortino ratio: mean over the root-mean-square of the negative returns."""
    r = np.asarray(bar_returns, dtype=np.float64)
    if len(r) < 2:
        return math.nan
    downside = math.sqrt(float(np.mean(np.minimum(r, 0.0) ** 2)))
    return float(r.mean() / downside * math.sqrt(ppy)) if downside > 0 else math.nan


def max_drawdown(equity: np.ndarray, init: float | None = None) -> float:
    """Largest peak-to-trough loss as a positive fraction (0.2 = 20 %)."""
    values = np.asarray(equity, dtype=np.float64)
    if init is not None:
        values = np.concatenate(([init], values))
    if len(values) == 0:
        return math.nan
    peak = np.maximum.accumulate(values)
    return float(-(values / peak - 1.0).min())


def cagr(total_return: float, n_bars: int, ppy: float) -> float:
    """Compound annual growth rate of a total return earned over ``n_bars`` bars."""
    years = n_bars / ppy
    if years <= 0 or total_return <= -1:
        return math.nan if years <= 0 else -1.0
    return float((1.0 + total_return) ** (1.0 / years) - 1.0)


def trade_stats(trade_returns: np.ndarray) -> dict[str, float]:
    """Win rate, profit factor, expectancy (mean return) and count of trade returns, shape (n_trades,)."""
    r = np.asarray(trade_returns, dtype=np.float64)
    if len(r) == 0:
        return {"win_rate": math.nan, "profit_factor": math.nan, "expectancy": math.nan, "trades": 0}
    gains = r[r > 0].sum()
    losses = -r[r < 0].sum()
    pf = float(gains / losses) if losses > 0 else (math.inf if gains > 0 else math.nan)
    return {"win_rate": float((r > 0).mean()), "profit_factor": pf, "expectancy": float(r.mean()), "trades": len(r)}


def compute_metrics(
    equity: np.ndarray,
    init_cash: float,
    trade_returns: np.ndarray,
    bars_in_market: float,
    ppy: float,
) -> dict[str, float]:
    """Every metric in :data:`METRIC_NAMES` for one equity curve.

    Parameters
    ----------
    equity : ndarray, shape (n_bars,)
        Value at each bar's close; the last value is after any final liquidation.
    init_cash : float
        Value before the first bar.
    trade_returns : ndarray, shape (n_trades,)
        Return of each closed trade (P&L over entry cost).
    bars_in_market : float
        Bars with an open position, for ``exposure``.
    ppy : float
        Bars per year (see :func:`periods_per_year`).
    """
    equity = np.asarray(equity, dtype=np.float64)
    n = len(equity)
    total = float(equity[-1] / init_cash - 1.0) if n else math.nan
    r = _bar_returns(equity, init_cash)
    mdd = max_drawdown(equity, init_cash)
    growth = cagr(total, n, ppy)
    out: dict[str, float] = {
        "total_return": total,
        "cagr": growth,
        "sharpe": sharpe(r, ppy),
        "sortino": sortino(r, ppy),
        "calmar": float(growth / mdd) if mdd > 0 and not math.isnan(growth) else math.nan,
        "max_drawdown": mdd,
    }
    out.update(trade_stats(trade_returns))
    out["exposure"] = float(bars_in_market / n) if n else math.nan
    return out
