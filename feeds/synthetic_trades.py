"""A deterministic synthetic tape of public trades with planted pump-and-dumps and hard negatives.

The live pump detector works on trades (La Morgia chunk features: rush orders, order counts,
volume, price), and no labelled real trade stream is available here. So tests, the streaming
demo and the benchmarks replay this tape through a Binance-protocol loopback exchange
(:mod:`feeds.loopback`). What it reproduces, per symbol:

* market orders arriving as a Poisson process (0.2-2 orders/s, log-uniform per symbol), each a
  buy or a sell; an order that walks the book fills at several price levels *in the same
  millisecond* (one trade per fill, consecutive trade ids, as Binance reports them); about 12 %
  of ordinary orders have more than one fill;
* a mid price following a log random walk at one-second resolution (4-10 % daily volatility),
  fills stepping a few basis points per level away from it.

Planted events (never in the first ``quiet_minutes``, never overlapping, one slot each):

* ``pump_dump``: the signal goes out at ``start``; for 30-120 s buyers rush in (order rate x20-80,
  90 % buys, 75 % of buys multi-fill: the *rush orders* La Morgia et al. key on) and the price
  climbs 5-40 % to its ``peak``; then a dump of 1-5 min gives back 70-100 % of the rise (``end``);
* ``news_volume`` (hard negative): a burst of two-sided trading (x5-20, 40-65 % buys, only a few
  more multi-fill orders than usual) with a slow 2-8 % drift over 2-10 minutes;
* ``large_trade`` (hard negative): one market order of 10-40 fills (a whale) moving the price
  0.5-2 %, half of which reverts within a minute.

Everything is generated on ``(seconds, symbols)`` grids and expanded to trades with numpy, no
per-trade Python loop; the same seed always gives the same tape and labels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import InputError
from feeds.synthetic import symbol_names

__all__ = ["EVENT_KINDS", "TradeTape", "generate_trades"]

EVENT_KINDS = ("pump_dump", "news_volume", "large_trade")
_DAY_S = 86_400.0
_TICK = 3e-4  # relative price step between successive fills of one order (3 bps per level)


@dataclass(frozen=True)
class TradeTape:
    """Trades of many symbols, oldest first, and the labels of the planted events.

    ``trades``: ``symbol, id, timestamp (ms), price, amount, side`` ("buy"/"sell": the taker's
    side), sorted by ``timestamp`` then ``id``; ids are consecutive per symbol. ``labels``:
    ``symbol, kind, start, peak, end`` as UTC epoch milliseconds (``peak`` = ``start`` for
    ``large_trade``, the price top for pumps, the end of the drift for news).
    """

    trades: pd.DataFrame
    labels: pd.DataFrame
    symbols: list[str]
    start_ms: int
    end_ms: int
    seed: int

    def for_symbol(self, symbol: str) -> pd.DataFrame:
        """This symbol's trades (``id, timestamp, price, amount, side``), oldest first."""
        rows = self.trades[self.trades["symbol"] == symbol]
        return rows.drop(columns="symbol").reset_index(drop=True)

    def pumps(self) -> pd.DataFrame:
        return self.labels[self.labels["kind"] == "pump_dump"].reset_index(drop=True)


@dataclass(frozen=True)
class _Event:
    column: int
    kind: str
    start_s: int  # second offset from the tape start
    peak_s: int
    end_s: int
    params: dict[str, float]


def _check(symbols: int | list[str], minutes: float, pumps_per_hour: float, negatives_per_hour: float) -> list[str]:
    if isinstance(symbols, (int, np.integer)) and not isinstance(symbols, bool):
        if symbols < 1:
            raise InputError(f"symbols: need at least 1, got {symbols}")
        names = symbol_names(int(symbols))
    else:
        names = [str(s) for s in symbols]
        if not names or len(set(names)) != len(names):
            raise InputError(f"symbols: need distinct names, got {symbols!r}")
    if not np.isfinite(minutes) or minutes < 5:
        raise InputError(f"minutes: need at least 5 minutes of trades, got {minutes!r}")
    for key, value in (("pumps_per_hour", pumps_per_hour), ("negatives_per_hour", negatives_per_hour)):
        if not np.isfinite(value) or not 0 <= value <= 6:
            raise InputError(f"{key}: expected events per symbol-hour in [0, 6], got {value!r}")
    return names


def _plan(
    rng: np.random.Generator,
    n_sec: int,
    n_sym: int,
    quiet_s: int,
    pumps_per_hour: float,
    negatives_per_hour: float,
) -> list[_Event]:
    """Non-overlapping events: the span after ``quiet_s`` is cut into 15-minute slots, one event per slot at most."""
    slot = 900
    slots = (n_sec - quiet_s - 60) // slot
    events: list[_Event] = []
    if slots < 1:
        return events
    p_pump = min(pumps_per_hour * slot / 3600.0, 1.0)
    p_neg = min(negatives_per_hour * slot / 3600.0, 1.0 - p_pump)
    draw = rng.random((slots, n_sym))
    for k in range(slots):
        for col in range(n_sym):
            u = draw[k, col]
            if u < p_pump:
                kind = "pump_dump"
            elif u < p_pump + p_neg:
                kind = "news_volume" if rng.random() < 0.6 else "large_trade"
            else:
                continue
            base = quiet_s + k * slot
            if kind == "pump_dump":
                rise_s, dump_s = int(rng.integers(30, 121)), int(rng.integers(60, 301))
                params = {
                    "rise": float(np.log1p(rng.uniform(0.05, 0.40))),
                    "give_back": rng.uniform(0.7, 1.0),
                    "rate_x": rng.uniform(20, 80),
                    "dump_rate_x": rng.uniform(10, 30),
                }
                length = rise_s + dump_s
            elif kind == "news_volume":
                rise_s = dump_s = 0
                length = int(rng.integers(120, 601))
                params = {
                    "drift": float(rng.choice([-1.0, 1.0]) * np.log1p(rng.uniform(0.02, 0.08))),
                    "rate_x": rng.uniform(5, 20),
                    "p_buy": rng.uniform(0.40, 0.65),
                }
            else:
                rise_s = dump_s = 0
                length = 60
                params = {
                    "impact": float(rng.uniform(0.005, 0.02)),
                    "fills": float(rng.integers(10, 41)),
                    "buy": float(rng.random() < 0.5),
                }
            start = base + int(rng.integers(0, slot - length - 1))
            peak = start + (rise_s if kind == "pump_dump" else length if kind == "news_volume" else 0)
            events.append(_Event(col, kind, start, peak, start + length, params))
    return events


def _apply(events: list[_Event], rate_x: np.ndarray, p_buy: np.ndarray, p_multi: np.ndarray, shift: np.ndarray) -> None:
    """Edit the per-second grids (shape (n_sec, n_sym)) in place for pumps and news bursts."""
    for e in events:
        c, p = e.column, e.params
        if e.kind == "pump_dump":
            rise, fall = e.peak_s - e.start_s, e.end_s - e.peak_s
            u = np.arange(1, rise + 1) / rise
            top = p["rise"]
            rate_x[e.start_s : e.peak_s, c] *= p["rate_x"] * (1.0 - 0.5 * u)
            p_buy[e.start_s : e.peak_s, c] = 0.9
            p_multi[e.start_s : e.peak_s, c] = 0.75
            v = np.arange(1, fall + 1) / fall
            rate_x[e.peak_s : e.end_s, c] *= 2.0 + (p["dump_rate_x"] - 2.0) * (1.0 - v) ** 2
            p_buy[e.peak_s : e.end_s, c] = 0.25
            p_multi[e.peak_s : e.end_s, c] = 0.2
            path = np.concatenate([top * (1.0 - (1.0 - u) ** 2), top * (1.0 - p["give_back"] * (1.0 - (1.0 - v) ** 2))])
            shift[e.start_s : e.end_s, c] += path
            shift[e.end_s :, c] += top * (1.0 - p["give_back"])
        elif e.kind == "news_volume":
            n = e.end_s - e.start_s
            u = np.arange(1, n + 1) / n
            rate_x[e.start_s : e.end_s, c] *= 1.0 + (p["rate_x"] - 1.0) * np.exp(-3.0 * u) * np.minimum(1.0, 10 * u)
            p_buy[e.start_s : e.end_s, c] = p["p_buy"]
            p_multi[e.start_s : e.end_s, c] = 0.18
            shift[e.start_s : e.end_s, c] += p["drift"] * u
            shift[e.end_s :, c] += p["drift"]


def generate_trades(
    symbols: int | list[str] = 10,
    minutes: float = 60.0,
    seed: int = 0,
    *,
    start: str | int = "2024-01-01",
    pumps_per_hour: float = 0.5,
    negatives_per_hour: float = 1.0,
    quiet_minutes: float = 10.0,
    rate_range: tuple[float, float] = (0.2, 2.0),
) -> TradeTape:
    """Generate a trade tape for ``symbols`` over ``minutes``; see the module docstring for what is in it.

    Parameters
    ----------
    symbols : a count (names ``SYN000/USDT`` ...) or the symbol names.
    minutes : length of the tape.
    seed : same seed, same tape and labels.
    start : UTC start (a date string or epoch ms), aligned down to the second.
    pumps_per_hour, negatives_per_hour : expected planted events per symbol-hour (0 for a clean tape).
    quiet_minutes : no event starts before this (the detectors' rolling windows fill up there).
    rate_range : ordinary market orders per second, log-uniform per symbol between these.
    """
    names = _check(symbols, minutes, pumps_per_hour, negatives_per_hour)
    if isinstance(start, (int, np.integer)):
        start_ms = int(start)
    else:
        t0 = pd.Timestamp(start)
        start_ms = int((t0.tz_localize("UTC") if t0.tzinfo is None else t0.tz_convert("UTC")).value // 1_000_000)
    start_ms -= start_ms % 1000
    n_sec, n_sym = int(minutes * 60), len(names)
    seq = np.random.SeedSequence(seed)
    rng_sym, rng_walk, rng_orders, rng_events = (np.random.default_rng(s) for s in seq.spawn(4))

    price0 = np.exp(rng_sym.uniform(np.log(1e-3), np.log(5e4), n_sym))
    base_rate = np.exp(rng_sym.uniform(np.log(rate_range[0]), np.log(rate_range[1]), n_sym))
    notional = np.exp(rng_sym.uniform(np.log(20.0), np.log(2_000.0), n_sym))  # quote value of a typical order
    sigma_s = np.exp(rng_sym.uniform(np.log(0.04), np.log(0.10), n_sym)) / np.sqrt(_DAY_S)
    first_id = rng_sym.integers(1_000_000, 900_000_000, n_sym)

    rate_x = np.exp(0.3 * _smooth_noise(rng_walk, n_sec, n_sym, 300))  # slow activity swings
    p_buy = np.full((n_sec, n_sym), 0.5)
    p_multi = np.full((n_sec, n_sym), 0.12)
    shift = np.zeros((n_sec, n_sym))
    events = _plan(rng_events, n_sec, n_sym, int(quiet_minutes * 60), pumps_per_hour, negatives_per_hour)
    _apply(events, rate_x, p_buy, p_multi, shift)
    log_mid = np.log(price0) + np.cumsum(sigma_s * rng_walk.standard_normal((n_sec, n_sym)), axis=0) + shift

    # orders: Poisson counts per second, then one row per order
    counts = rng_orders.poisson(base_rate * rate_x)
    sec_idx, sym_idx = np.nonzero(counts)
    reps = counts[sec_idx, sym_idx]
    o_sec, o_sym = np.repeat(sec_idx, reps), np.repeat(sym_idx, reps)
    n_orders = len(o_sec)
    o_ms = o_sec.astype(np.int64) * 1000 + rng_orders.integers(0, 1000, n_orders)
    o_buy = rng_orders.random(n_orders) < p_buy[o_sec, o_sym]
    multi = rng_orders.random(n_orders) < p_multi[o_sec, o_sym]
    o_fills = np.where(multi, 2 + np.minimum(rng_orders.geometric(0.35, n_orders) - 1, 18), 1)
    o_size = notional[o_sym] * np.exp(rng_orders.normal(0.0, 0.8, n_orders))  # quote value of the order
    big = [e for e in events if e.kind == "large_trade"]
    if big:  # the whale orders: appended as orders of their own
        b_sec = np.array([e.start_s for e in big])
        b_sym = np.array([e.column for e in big])
        o_sec = np.r_[o_sec, b_sec]
        o_sym = np.r_[o_sym, b_sym]
        o_ms = np.r_[o_ms, b_sec.astype(np.int64) * 1000 + rng_orders.integers(0, 1000, len(big))]
        o_buy = np.r_[o_buy, np.array([e.params["buy"] > 0 for e in big])]
        o_fills = np.r_[o_fills, np.array([int(e.params["fills"]) for e in big])]
        o_size = np.r_[o_size, notional[b_sym] * 60.0]
        for e in big:  # the impact: a step that half reverts within a minute
            sign = 1.0 if e.params["buy"] > 0 else -1.0
            decay = 1.0 - 0.5 * np.minimum(np.arange(n_sec - e.start_s) / 60.0, 1.0)
            log_mid[e.start_s :, e.column] += sign * e.params["impact"] * decay

    # fills: one row per fill, stepping away from the mid price level by level
    f_order = np.repeat(np.arange(len(o_sec)), o_fills)
    level = np.arange(len(f_order)) - np.repeat(np.cumsum(o_fills) - o_fills, o_fills)
    sign = np.where(o_buy[f_order], 1.0, -1.0)
    price = np.exp(log_mid[o_sec[f_order], o_sym[f_order]] + sign * _TICK * (0.5 + level))
    amount = o_size[f_order] / o_fills[f_order] / price * np.exp(rng_orders.normal(0.0, 0.3, len(f_order)))
    sym = o_sym[f_order]
    ts = start_ms + o_ms[f_order]
    order = np.lexsort((level, f_order, ts, sym))  # per symbol: time, then the order, then its fills
    # exchange precision (8 decimals), so a price survives the trip through a JSON string unchanged
    price = np.maximum(np.round(price[order], 8), 1e-8)
    amount = np.maximum(np.round(amount[order], 8), 1e-8)
    sym, ts = sym[order], ts[order]
    buy = o_buy[f_order][order]
    first_of_sym = np.searchsorted(sym, np.arange(n_sym))
    ids = first_id[sym] + np.arange(len(sym)) - first_of_sym[sym]
    trades = pd.DataFrame(
        {
            "symbol": pd.Categorical.from_codes(sym, categories=names),
            "id": ids.astype(np.int64),
            "timestamp": ts.astype(np.int64),
            "price": price,
            "amount": amount,
            "side": np.where(buy, "buy", "sell"),
        }
    )
    trades = trades.sort_values(["timestamp", "symbol", "id"], kind="stable", ignore_index=True)
    return TradeTape(trades, _labels(events, names, start_ms), names, start_ms, start_ms + n_sec * 1000, seed)


def _smooth_noise(rng: np.random.Generator, n: int, m: int, span: int) -> np.ndarray:
    """Unit-sd noise, shape (n, m), smoothed over about ``span`` rows (an exponential average)."""
    raw = rng.standard_normal((n, m))
    smooth = pd.DataFrame(raw).ewm(span=span, adjust=False).mean().to_numpy()
    return smooth / max(float(smooth.std()), 1e-9)


def _labels(events: list[_Event], names: list[str], start_ms: int) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "symbol": [names[e.column] for e in events],
            "kind": [e.kind for e in events],
            "start": [start_ms + 1000 * e.start_s for e in events],
            "peak": [start_ms + 1000 * e.peak_s for e in events],
            "end": [start_ms + 1000 * e.end_s for e in events],
        },
        columns=["symbol", "kind", "start", "peak", "end"],
    )
    return frame.astype({"start": "int64", "peak": "int64", "end": "int64"}).sort_values(
        ["symbol", "start"], ignore_index=True
    )
