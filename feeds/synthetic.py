"""A deterministic synthetic crypto market with labelled anomalies.

Real candles come without ground truth, so detectors are tuned and scored
here first. The generator reproduces the stylized facts that matter to a
detector (checked against real Binance candles in ``docs/synthetic.md``):

* volatility clustering: a GARCH(1,1) variance times a slow log-normal
  regime, so calm and wild days alternate;
* heavy tails: Student-t innovations (4-6 degrees of freedom);
* a daily cycle in volatility, volume and social chatter (peaks ~15:00 UTC);
* volume that rises with ``|return|`` and with the volatility regime;
* social volume (mentions per bar) that co-moves with volume and returns,
  drawn as overdispersed gamma-Poisson counts;
* per-symbol price level (1e-3 .. 5e4) and daily volatility (4 .. 10 %).

All symbols are columns of ``(n_bars, n_symbols)`` arrays; the only loop
over time is the GARCH recursion, vectorized across symbols. Anomalies are
planted by :mod:`feeds.synthetic_anomalies`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import InputError
from core.timeframes import timeframe_to_ms
from feeds.synthetic_anomalies import (
    ALL_KINDS,
    FAULT_KINDS,
    MARKET_KINDS,
    PlannedAnomaly,
    apply_market_anomalies,
    apply_stale,
    gap_mask,
    plan_anomalies,
)

__all__ = ["ALL_KINDS", "FAULT_KINDS", "MARKET_KINDS", "SyntheticMarket", "generate_market", "symbol_names"]

log = logging.getLogger(__name__)

_DAY_S = 86_400.0
_PEAK_HOUR = 15.0  # UTC hour of the daily activity peak (EU afternoon / US open)


@dataclass(frozen=True)
class SyntheticMarket:
    """Candles per symbol, the anomaly labels, and how they were made."""

    candles: dict[str, pd.DataFrame]
    labels: pd.DataFrame
    timeframe: str
    seed: int

    @property
    def symbols(self) -> list[str]:
        return list(self.candles)


def symbol_names(count: int) -> list[str]:
    """Names used when ``generate_market`` is given a count: ``SYN000/USDT``, ``SYN001/USDT``, ..."""
    width = max(3, len(str(count - 1)))
    return [f"SYN{i:0{width}d}/USDT" for i in range(count)]


def _check_args(
    symbols: int | Sequence[str], days: float, timeframe: str, anomaly_rate: float | None, kinds: Sequence[str] | None
) -> tuple[list[str], int, tuple[str, ...] | None]:
    if isinstance(symbols, (int, np.integer)) and not isinstance(symbols, bool):
        if symbols < 1:
            raise InputError(f"symbols: need at least 1, got {symbols}")
        names = symbol_names(int(symbols))
    elif isinstance(symbols, str) or not isinstance(symbols, Sequence):
        raise InputError(f"symbols: expected a count or a list of symbol names, got {symbols!r}")
    else:
        names = [str(s) for s in symbols]
        if not names:
            raise InputError("symbols: the list is empty")
        dup = sorted({s for s in names if names.count(s) > 1})
        if dup:
            raise InputError(f"symbols: duplicated name(s) {', '.join(dup)}")
    try:
        step_ms = timeframe_to_ms(timeframe)
    except ValueError as err:
        raise InputError(f"timeframe: {err}") from None
    if not np.isfinite(days) or days <= 0:
        raise InputError(f"days: must be a positive number, got {days!r}")
    if anomaly_rate is not None and (not np.isfinite(anomaly_rate) or not 0 <= anomaly_rate <= 0.06):
        raise InputError(f"anomaly_rate: expected anomalies per bar in [0, 0.06], got {anomaly_rate!r}")
    chosen = None
    if kinds is not None:
        bad = [k for k in kinds if k not in ALL_KINDS]
        if bad or isinstance(kinds, str):
            raise InputError(f"kinds: unknown kind(s) {bad or kinds!r}; valid kinds: {', '.join(ALL_KINDS)}")
        chosen = tuple(dict.fromkeys(kinds))
    return names, step_ms, chosen


def _daily_cycle(index: pd.DatetimeIndex, step_s: float, amplitude: float) -> np.ndarray:
    """Multiplicative intraday cycle at each bar's mid-time, mean-one in logs; flat for bars >= 1 day."""
    if step_s >= _DAY_S:
        return np.ones(len(index))
    hours = (index.hour + index.minute / 60.0 + index.second / 3600.0).to_numpy(dtype=float) + step_s / 7200.0
    return np.exp(amplitude * np.cos(2 * np.pi * (hours - _PEAK_HOUR) / 24.0))


def _ar1(rng: np.random.Generator, n: int, m: int, phi: float, sd: float) -> np.ndarray:
    """Stationary AR(1) noise, shape (n, m), with unconditional stdev ``sd``."""
    shocks = rng.standard_normal((n, m)) * sd * np.sqrt(1 - phi**2)
    shocks[0] = rng.standard_normal(m) * sd * (1 - phi)  # so that x_0 is a stationary draw
    # x_t = phi x_{t-1} + e_t is an exponential average (alpha = 1 - phi) of e / (1 - phi), run in compiled code.
    return pd.DataFrame(shocks).ewm(alpha=1 - phi, adjust=False).mean().to_numpy() / (1 - phi)


def _garch_innovations(rng: np.random.Generator, n: int, m: int, persistence: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit-variance GARCH(1,1) shocks with Student-t innovations.

    Returns ``(eps, h)``, both (n, m): ``eps = sqrt(h) * z`` with
    ``h_t = (1 - a - b) + a * eps_{t-1}^2 + b * h_{t-1}``.
    """
    df = rng.uniform(4.0, 6.0, m)
    z = rng.standard_t(df, size=(n, m)) * np.sqrt((df - 2) / df)
    np.clip(z, -12, 12, out=z)
    alpha = 0.08
    beta = persistence - alpha
    omega = 1 - persistence
    h = np.empty((n, m))
    eps = np.empty((n, m))
    h_t = np.ones(m)
    for t in range(n):  # the recursion is sequential in time; each step is vectorized across symbols
        h[t] = h_t
        eps[t] = np.sqrt(h_t) * z[t]
        h_t = omega + alpha * eps[t] ** 2 + beta * h_t
    return eps, h


def _bridge_extremes(rng: np.random.Generator, ret: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact max and min of a Brownian bridge from 0 to ``ret`` with variance ``sigma**2``.

    ``P(max >= x) = exp(-2 x (x - ret) / sigma^2)`` for ``x >= max(0, ret)``;
    inverting it with uniforms gives intra-bar highs and lows consistent with
    the bar's open, close and volatility.
    """
    var2 = -2.0 * sigma**2
    u_hi = rng.random(ret.shape)
    u_lo = rng.random(ret.shape)
    up = 0.5 * (ret + np.sqrt(ret**2 + var2 * np.log(u_hi)))
    down = 0.5 * (ret - np.sqrt(ret**2 + var2 * np.log(u_lo)))
    return up, down


def generate_market(
    symbols: int | Sequence[str] = 10,
    days: float = 30,
    timeframe: str = "1h",
    seed: int = 0,
    *,
    start: str = "2024-01-01",
    anomaly_rate: float | None = None,
    kinds: Sequence[str] | None = None,
    faults: bool = True,
) -> SyntheticMarket:
    """Generate candles (with ``social_volume``) for many symbols, and the labels of planted anomalies.

    Parameters
    ----------
    symbols : a count (names ``SYN000/USDT`` ...) or the symbol names.
    days : length of every series; ``days * 86400 / bar seconds`` bars (at least 30).
    timeframe : bar length, ``1m`` .. ``1d``.
    seed : same seed, same market and labels; different seed, different market.
    start : first bar's open time (UTC; aligned down to the bar grid).
    anomaly_rate : expected anomalies per bar after the first 20 % (default: 1/300, at least 2 per symbol).
        0 gives a clean market.
    kinds : which kinds to plant (default: all market kinds, plus ``gap``/``stale`` when ``faults``).
    faults : include the data-fault kinds in the default ``kinds``.

    Returns
    -------
    SyntheticMarket with ``labels`` columns ``symbol, start, end, kind`` (bar-open UTC times, inclusive).
    """
    names, step_ms, chosen = _check_args(symbols, days, timeframe, anomaly_rate, kinds)
    if chosen is None:
        chosen = MARKET_KINDS + (FAULT_KINDS if faults else ())
    step_s = step_ms / 1000.0
    n, m = int(days * _DAY_S // step_s), len(names)
    if n < 30:
        raise InputError(f"days: {days} days of {timeframe} bars is {n} bars; need at least 30")
    try:
        t0 = pd.Timestamp(start)
    except ValueError as err:
        raise InputError(f"start: not a time: {start!r} ({err})") from None
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")
    t0_ms = t0.value // 1_000_000
    first_ms = t0_ms - t0_ms % step_ms
    index = pd.DatetimeIndex(pd.to_datetime(np.arange(n) * step_ms + first_ms, unit="ms", utc=True)).as_unit("ns")
    index.name = "time"

    seq = np.random.SeedSequence(seed)
    rng_sym, rng_vol, rng_flow, rng_ohlc, rng_anom = (np.random.default_rng(s) for s in seq.spawn(5))

    # Per-symbol character.
    bars_per_day = _DAY_S / step_s
    daily_vol = np.exp(rng_sym.uniform(np.log(0.04), np.log(0.10), m))
    sigma_bar = daily_vol / np.sqrt(bars_per_day)
    price0 = np.exp(rng_sym.uniform(np.log(1e-3), np.log(5e4), m))
    notional = np.exp(rng_sym.uniform(np.log(2e4), np.log(2e7), m)) * (step_s / 3600.0)  # quote volume per bar
    mentions = np.exp(rng_sym.uniform(np.log(2.0), np.log(300.0), m)) * (step_s / 3600.0)  # per bar
    drift = rng_sym.normal(0.0, 0.002, m) / bars_per_day

    # Volatility: GARCH short memory x slow regime (half-life ~4 days) x daily cycle.
    persistence = float(np.clip(np.exp(-np.log(2) * step_s / (12 * 3600)), 0.90, 0.985))
    eps, h = _garch_innovations(rng_vol, n, m, persistence)
    regime_phi = float(np.exp(-np.log(2) * step_s / (4 * _DAY_S)))
    regime = _ar1(rng_vol, n, m, regime_phi, 0.45)
    cycle = _daily_cycle(index, step_s, 0.25)[:, None]
    sigma = sigma_bar * cycle * np.exp(regime - 0.45**2) * np.sqrt(h)  # conditional stdev per bar, (n, m)
    z = eps / np.sqrt(h)  # the Student-t innovation itself
    ret = sigma * z + drift

    # Volume (relative, log-normal) and social intensity multipliers.
    absz = np.abs(z)
    log_vol = (
        np.log(_daily_cycle(index, step_s, 0.35))[:, None]
        + 0.6 * regime
        + 0.4 * np.log(h)
        + 0.3 * (absz - 0.8)
        + _ar1(rng_flow, n, m, 0.6, 0.3 * (3600.0 / step_s) ** 0.15)  # short bars: lumpier volume
    )
    vol_x = np.exp(log_vol)
    social_log = 0.7 * log_vol + 0.15 * np.clip(eps, -4, 4) + _ar1(rng_flow, n, m, 0.8, 0.3)
    social_x = np.exp(social_log)
    jump = np.zeros((n, m))
    wick_x = np.ones((n, m))

    planned = plan_anomalies(rng_anom, n, sigma_bar, chosen, anomaly_rate)
    apply_market_anomalies(planned, ret, jump, vol_x, social_x, wick_x)

    # Prices: close from cumulative log returns; open = previous close (times the level-shift jump).
    log_close = np.log(price0) + np.cumsum(ret + jump, axis=0)
    log_open = log_close - ret
    up, down = _bridge_extremes(rng_ohlc, ret, 0.85 * sigma * wick_x)
    close, open_ = np.exp(log_close), np.exp(log_open)
    high = np.maximum(np.exp(log_open + up), np.maximum(open_, close))
    low = np.minimum(np.exp(log_open + down), np.minimum(open_, close))
    mid = np.sqrt(open_ * close)
    volume = notional / mid * vol_x  # base-asset units: quote notional / price
    lam = mentions * _daily_cycle(index, step_s, 0.3)[:, None] * social_x
    social = rng_flow.poisson(lam * rng_flow.gamma(3.0, 1.0 / 3.0, size=(n, m))).astype(float)

    ohlcv = [open_, high, low, close, volume]
    apply_stale(planned, ohlcv)
    keep = gap_mask(planned, n, m)

    candles: dict[str, pd.DataFrame] = {}
    for j, name in enumerate(names):
        rows = keep[:, j]
        frame = pd.DataFrame(
            {
                "open": open_[rows, j],
                "high": high[rows, j],
                "low": low[rows, j],
                "close": close[rows, j],
                "volume": volume[rows, j],
                "social_volume": social[rows, j],
            },
            index=index[rows],
        )
        candles[name] = frame
    labels = _labels(planned, names, index)
    log.debug("synthetic market: %d symbols x %d bars of %s, %d labels", m, n, timeframe, len(labels))
    return SyntheticMarket(candles=candles, labels=labels, timeframe=timeframe, seed=seed)


def _labels(planned: list[PlannedAnomaly], names: list[str], index: pd.DatetimeIndex) -> pd.DataFrame:
    if not planned:
        empty = pd.DatetimeIndex([], tz="UTC").as_unit("ns")
        return pd.DataFrame({"symbol": pd.Series([], dtype=object), "start": empty, "end": empty, "kind": []})
    frame = pd.DataFrame(
        {
            "symbol": [names[a.column] for a in planned],
            "start": index[[a.start for a in planned]],
            "end": index[[a.end for a in planned]],
            "kind": [a.kind for a in planned],
        }
    )
    return frame.sort_values(["symbol", "start"], ignore_index=True)
