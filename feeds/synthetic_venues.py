"""The same asset on several venues: a multi-venue synthetic market and a real-candle replay.

A divergence detector needs ground truth of a kind real data never labels: one venue
breaking away from the others while the asset itself moves as it likes. Two builders:

* :func:`generate_venue_market` takes the single-venue synthetic market
  (:mod:`feeds.synthetic`, with its pumps, crashes and level shifts *common* to every
  venue) as the asset's true price and derives one candle series per venue, then plants
  single-venue dislocations (labelled) on top.
* :func:`replay_as_venues` turns one real candle series into several venues that differ
  only by noise (no dislocation): the false-alarm test on real market behaviour.

What makes venues of one asset differ when nothing is wrong (both builders):

* **bid-ask bounce**: a close is the last trade, at the bid or at the ask, so each venue's
  close sits ``+-half_spread`` off the mid at random (half-spread 1..8 bp per venue);
* **timing**: a venue's close is its last trade *before* the bar close, so it lags the
  close by a per-bar delay (exponential; its mean is drawn per venue in
  ``stale_s``, default 2..30 s: thin venues lag more), plus a small fixed clock skew
  (``+-max_offset_s``, default 5 s). The price at that instant is drawn from the
  Brownian bridge between the neighbouring closes with the bar's own volatility
  (Parkinson, from its high-low range), so fast moves leak into the spread exactly as
  much as a lag would let them;
* **quote currency**: venues quoting in USD rather than USDT carry a slowly moving
  basis (AR(1), sd 5 bp, half-life 3 days);
* **volume**: each venue has its own share of the asset's volume, times independent
  log-normal noise.

Planted dislocations (:data:`VENUE_KINDS`), one venue at a time, never overlapping
within a group, none in the first 20 % (detectors warm up there):

* ``venue_spike``: a thin book pumped or dumped on one venue (1.5 .. 8 %, reached in
  1-2 bars, held 0-3 bars, reverting over 1-3 bars) with that venue's volume x3..10;
* ``venue_depeg``: the venue's price drifts away over 3-8 bars (2 .. 8 %), stays 2-10
  bars, comes back over 2-6 bars; volume x1..2;
* ``venue_halt``: withdrawals halted: a premium or discount grows over 2-6 bars
  (2 .. 8 %), holds 2-8 bars, closes over 1-4 bars, while the venue's volume falls
  to 20..50 %.

The label spans every bar whose price is displaced. All arrays are ``(n_bars,
n_series)``; the only loops are over venues and planted events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.errors import InputError
from core.timeframes import timeframe_to_ms
from feeds.synthetic import generate_market

__all__ = [
    "DEFAULT_VENUES",
    "USD_VENUES",
    "VENUE_KINDS",
    "VenueMarket",
    "generate_venue_market",
    "replay_as_venues",
    "venue_key",
]

VENUE_KINDS: tuple[str, ...] = ("venue_spike", "venue_depeg", "venue_halt")
DEFAULT_VENUES: tuple[str, ...] = ("binance", "okx", "kraken")
#: venues that quote in USD rather than USDT (their symbol and basis differ)
USD_VENUES = frozenset({"kraken", "coinbase", "bitstamp", "gemini"})
_TRAIN_FRACTION = 0.2
_MAX_LEN = 28  # longest dislocation in bars (depeg: 8 + 10 + 6, plus slack)
_LN2 = float(np.log(2.0))


def venue_key(venue: str, symbol: str) -> str:
    """How a venue's series is keyed: ``binance:BTC/USDT`` (the runtime's ``exchange:symbol``)."""
    return f"{venue}:{symbol}"


def _venue_symbol(symbol: str, venue: str) -> str:
    base, _, quote = symbol.partition("/")
    if venue in USD_VENUES and quote in ("USDT", "USDC"):
        return f"{base}/USD"
    return symbol


@dataclass(frozen=True)
class VenueMarket:
    """Candles per venue series, the groups they form, and the planted dislocations.

    ``candles`` is keyed ``venue:symbol`` (see :func:`venue_key`); ``groups`` maps an asset
    group name to its member keys; ``labels`` has ``group, venue, symbol, start, end, kind``
    (bar-open UTC times, inclusive).
    """

    candles: dict[str, pd.DataFrame]
    groups: dict[str, list[str]]
    labels: pd.DataFrame
    timeframe: str
    seed: int


@dataclass(frozen=True)
class _Noise:
    half_spread: np.ndarray  # (n_venues,) log units
    offset_s: np.ndarray  # (n_venues,) fixed clock skew
    stale_s: np.ndarray  # (n_venues,) mean lag of the last trade behind the close


def _venue_noise(rng: np.random.Generator, n_venues: int, max_offset_s: float, stale_s: tuple[float, float]) -> _Noise:
    half_spread = np.exp(rng.uniform(np.log(1e-4), np.log(8e-4), n_venues))
    offset = rng.uniform(-max_offset_s, max_offset_s, n_venues)
    lo, hi = stale_s
    stale = (
        np.exp(rng.uniform(np.log(max(lo, 1e-3)), np.log(max(hi, lo, 1e-3)), n_venues))
        if hi > 0
        else np.zeros(n_venues)
    )
    return _Noise(half_spread, offset, stale)


def _bar_sigma(high: np.ndarray, low: np.ndarray) -> np.ndarray:
    """Per-bar volatility of the log price (Parkinson estimate from the high-low range)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        hl = np.log(high / low)
    return np.nan_to_num(np.abs(hl), nan=0.0) / np.sqrt(4 * _LN2)


def _shifted_log_close(
    rng: np.random.Generator, log_close: np.ndarray, sigma: np.ndarray, shift_s: np.ndarray, step_s: float
) -> np.ndarray:
    """The log price ``shift_s`` seconds from each bar's close (negative: earlier), Brownian bridge.

    ``log_close`` and ``sigma`` are (n,); ``shift_s`` is (n,). Within one bar of the close:
    earlier instants bridge towards the previous close, later ones towards the next close.
    """
    n = len(log_close)
    frac = np.clip(np.abs(shift_s) / step_s, 0.0, 1.0)
    prev_c = np.concatenate([log_close[:1], log_close[:-1]])
    next_c = np.concatenate([log_close[1:], log_close[-1:]])
    next_sigma = np.concatenate([sigma[1:], sigma[-1:]])
    earlier = shift_s < 0
    target = np.where(earlier, prev_c, next_c)
    vol = np.where(earlier, sigma, next_sigma)
    mean = log_close + frac * (target - log_close)
    bridge_sd = vol * np.sqrt(frac * (1.0 - frac))
    return mean + bridge_sd * rng.standard_normal(n)


def _derive_venue(
    rng: np.random.Generator,
    frame: pd.DataFrame,
    half_spread: float,
    offset_s: float,
    stale_s: float,
    step_s: float,
    share: float,
    basis: np.ndarray | None,
) -> pd.DataFrame:
    """One venue's candles from the asset's true candles (see the module docstring)."""
    close = frame["close"].to_numpy(dtype="float64")
    high = frame["high"].to_numpy(dtype="float64")
    low = frame["low"].to_numpy(dtype="float64")
    n = len(close)
    log_close = np.log(close)
    sigma = _bar_sigma(high, low)
    shift = offset_s - (rng.exponential(stale_s, n) if stale_s > 0 else np.zeros(n))
    vclose = _shifted_log_close(rng, log_close, sigma, shift, step_s)
    vclose += half_spread * rng.choice([-1.0, 1.0], n)  # bid-ask bounce
    if basis is not None:
        vclose += basis
    vopen = np.concatenate([[vclose[0] - (log_close[0] - np.log(frame["open"].iloc[0]))], vclose[:-1]])
    # The bar's range follows the true bar's, around this venue's open/close, widened by the spread.
    up = np.log(high) - np.maximum(np.log(frame["open"].to_numpy(dtype="float64")), log_close)
    down = np.minimum(np.log(frame["open"].to_numpy(dtype="float64")), log_close) - np.log(low)
    vhigh = np.maximum(vopen, vclose) + np.clip(up, 0, None) + half_spread
    vlow = np.minimum(vopen, vclose) - np.clip(down, 0, None) - half_spread
    volume = frame["volume"].to_numpy(dtype="float64") * share * np.exp(rng.normal(-0.03, 0.25, n))
    return pd.DataFrame(
        {"open": np.exp(vopen), "high": np.exp(vhigh), "low": np.exp(vlow), "close": np.exp(vclose), "volume": volume},
        index=frame.index,
    )


def _basis(rng: np.random.Generator, n: int, step_s: float) -> np.ndarray:
    """USD vs USDT basis in log units: AR(1), sd 5 bp, half-life 3 days, small mean premium."""
    phi = float(np.exp(-_LN2 * step_s / (3 * 86_400)))
    shocks = rng.standard_normal(n) * 5e-4 * np.sqrt(1 - phi**2)
    shocks[0] = rng.standard_normal() * 5e-4 * (1 - phi)
    ar = pd.Series(shocks).ewm(alpha=1 - phi, adjust=False).mean().to_numpy() / (1 - phi)
    return ar + rng.uniform(-3e-4, 3e-4)


def _dislocation_shape(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(log displacement per bar, volume multiplier per bar) of one dislocation."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    if kind == "venue_spike":
        size = float(np.exp(rng.uniform(np.log(0.015), np.log(0.08))))
        up, hold, down = int(rng.integers(1, 3)), int(rng.integers(0, 4)), int(rng.integers(1, 4))
        vol_x = float(rng.uniform(3, 10))
        vol = np.concatenate([np.full(up + hold, vol_x), np.linspace(vol_x, 1.5, down)])
    elif kind == "venue_depeg":
        size = float(np.exp(rng.uniform(np.log(0.02), np.log(0.08))))
        up, hold, down = int(rng.integers(3, 9)), int(rng.integers(2, 11)), int(rng.integers(2, 7))
        vol = np.full(up + hold + down, float(rng.uniform(1.0, 2.0)))
    elif kind == "venue_halt":
        size = float(np.exp(rng.uniform(np.log(0.02), np.log(0.08))))
        up, hold, down = int(rng.integers(2, 7)), int(rng.integers(2, 9)), int(rng.integers(1, 5))
        vol = np.full(up + hold + down, float(rng.uniform(0.2, 0.5)))
    else:
        raise ValueError(f"unknown dislocation kind {kind!r}")
    rise = np.arange(1, up + 1) / up
    fall = np.arange(down - 1, -1, -1) / down  # ends at 0 on the last bar: that bar is back in line
    shape = np.concatenate([rise, np.ones(hold), fall]) * sign * float(np.log1p(size))
    # Keep only displaced bars in the label span: the last "fall" bar is 0 and not part of it.
    keep = np.abs(shape) > 0
    return shape[keep], vol[: len(shape)][keep]


def _plan_group(
    rng: np.random.Generator, n_bars: int, n_venues: int, kinds: Sequence[str], rate: float
) -> list[tuple[int, str, int, np.ndarray, np.ndarray]]:
    """Non-overlapping dislocations for one group: (venue index, kind, start bar, shape, volume)."""
    first = int(np.ceil(_TRAIN_FRACTION * n_bars)) + 2
    eligible = n_bars - first - 2
    if eligible < _MAX_LEN + 4 or rate <= 0:
        return []
    count = min(int(rng.poisson(rate * eligible)), eligible // (_MAX_LEN + 4))
    count = max(count, 1)
    width = eligible // count
    out = []
    for slot in range(count):
        kind = kinds[int(rng.integers(len(kinds)))]
        shape, vol = _dislocation_shape(rng, kind)
        room = width - len(shape) - 4
        start = first + slot * width + 2 + int(rng.integers(0, max(room, 0) + 1))
        out.append((int(rng.integers(n_venues)), kind, start, shape, vol))
    return out


def _apply_dislocation(frame: pd.DataFrame, start: int, shape: np.ndarray, vol: np.ndarray) -> None:
    """Displace one venue's prices (in place) over ``shape``; opens follow the displaced closes."""
    n = len(frame)
    end = min(start + len(shape), n)
    shape, vol = shape[: end - start], vol[: end - start]
    disp = np.zeros(n)
    disp[start:end] = shape
    prev = np.concatenate([[0.0], disp[:-1]])
    factor_c = np.exp(disp)
    factor_o = np.exp(prev)
    open_ = frame["open"].to_numpy() * factor_o
    close = frame["close"].to_numpy() * factor_c
    high = np.maximum(frame["high"].to_numpy() * np.maximum(factor_c, factor_o), np.maximum(open_, close))
    low = np.minimum(frame["low"].to_numpy() * np.minimum(factor_c, factor_o), np.minimum(open_, close))
    volume = frame["volume"].to_numpy().copy()
    volume[start:end] *= vol
    frame["open"], frame["high"], frame["low"], frame["close"], frame["volume"] = open_, high, low, close, volume


def _check_venues(venues: Sequence[str]) -> list[str]:
    if isinstance(venues, str) or len(venues) < 2:
        raise InputError(f"venues: need at least 2 venue names, got {venues!r}")
    names = [str(v) for v in venues]
    dup = sorted({v for v in names if names.count(v) > 1})
    if dup:
        raise InputError(f"venues: duplicated venue(s) {', '.join(dup)}")
    return names


def generate_venue_market(
    assets: int | Sequence[str] = 5,
    venues: Sequence[str] = DEFAULT_VENUES,
    days: float = 60,
    timeframe: str = "1h",
    seed: int = 0,
    *,
    dislocation_rate: float = 1 / 250,
    kinds: Sequence[str] = VENUE_KINDS,
    max_offset_s: float = 5.0,
    stale_s: tuple[float, float] = (2.0, 30.0),
    common_anomalies: bool = True,
    start: str = "2024-01-01",
) -> VenueMarket:
    """Every asset on every venue, with planted single-venue dislocations.

    Parameters
    ----------
    assets : a count (``SYN000/USDT`` ...) or symbol names; each asset is one group.
    venues : venue names (at least 2; 3+ to tell which venue broke away). Venues in
        :data:`USD_VENUES` quote the asset in USD (``BASE/USD``) with a moving basis.
    days, timeframe, seed, start : as :func:`feeds.synthetic.generate_market`.
    dislocation_rate : expected dislocations per bar and group after the first 20 %
        (at least one per group).
    kinds : which of :data:`VENUE_KINDS` to plant.
    max_offset_s, stale_s : timing noise: bound of the fixed clock skew (s); range of the venues'
        mean lag of the last trade behind the close (s).
    common_anomalies : keep the base market's anomalies (pumps, crashes, level shifts) on
        every venue: real moves that must *not* count as divergence.
    """
    names = _check_venues(venues)
    bad = [k for k in kinds if k not in VENUE_KINDS]
    if bad or isinstance(kinds, str) or not kinds:
        raise InputError(f"kinds: expected a non-empty subset of {', '.join(VENUE_KINDS)}, got {kinds!r}")
    if not np.isfinite(dislocation_rate) or not 0 <= dislocation_rate <= 0.05:
        raise InputError(f"dislocation_rate: expected dislocations per bar in [0, 0.05], got {dislocation_rate!r}")
    base = generate_market(
        assets,
        days=days,
        timeframe=timeframe,
        seed=seed,
        start=start,
        faults=False,
        anomaly_rate=None if common_anomalies else 0.0,
    )
    step_s = timeframe_to_ms(timeframe) / 1000.0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 20]))
    candles: dict[str, pd.DataFrame] = {}
    groups: dict[str, list[str]] = {}
    rows: list[dict[str, object]] = []
    for symbol, frame in base.candles.items():
        ohlcv = frame[["open", "high", "low", "close", "volume"]]
        noise = _venue_noise(rng, len(names), max_offset_s, stale_s)
        shares = rng.dirichlet(np.full(len(names), 3.0))
        members = []
        for v, venue in enumerate(names):
            basis = _basis(rng, len(ohlcv), step_s) if venue in USD_VENUES else None
            vframe = _derive_venue(
                rng, ohlcv, noise.half_spread[v], noise.offset_s[v], noise.stale_s[v], step_s, shares[v], basis
            )
            key = venue_key(venue, _venue_symbol(symbol, venue))
            candles[key] = vframe
            members.append(key)
        groups[symbol] = members
        for v, kind, s, shape, vol in _plan_group(rng, len(ohlcv), len(names), list(kinds), dislocation_rate):
            _apply_dislocation(candles[members[v]], s, shape, vol)
            end = min(s + len(shape), len(ohlcv)) - 1
            rows.append(
                {
                    "group": symbol,
                    "venue": names[v],
                    "symbol": members[v].partition(":")[2],
                    "start": ohlcv.index[s],
                    "end": ohlcv.index[end],
                    "kind": kind,
                }
            )
    labels = pd.DataFrame(rows, columns=["group", "venue", "symbol", "start", "end", "kind"])
    if not labels.empty:
        labels = labels.sort_values(["group", "start"], ignore_index=True)
    return VenueMarket(candles=candles, groups=groups, labels=labels, timeframe=timeframe, seed=seed)


def replay_as_venues(
    frame: pd.DataFrame,
    venues: Sequence[str] = ("a", "b", "c"),
    *,
    seed: int = 0,
    timeframe: str | None = None,
    max_offset_s: float = 5.0,
    stale_s: tuple[float, float] = (2.0, 30.0),
    usd_venues: Sequence[str] = (),
) -> dict[str, pd.DataFrame]:
    """One real candle series as several venues that differ only by noise (no dislocation).

    Bid-ask bounce, timing offsets and (for ``usd_venues``) a quote basis, as in
    :func:`generate_venue_market`; volume split into noisy shares. Returns ``venue -> frame``
    on the input's index. ``timeframe`` defaults to the median bar spacing.
    """
    names = _check_venues(venues)
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in frame.columns]
    if missing:
        raise InputError(f"replay_as_venues: frame lacks column(s) {', '.join(missing)}")
    if timeframe is not None:
        step_s = timeframe_to_ms(timeframe) / 1000.0
    else:
        step_s = float(np.median(np.diff(frame.index.asi8))) / 1e9 if len(frame) > 1 else 3600.0
    rng = np.random.default_rng(np.random.SeedSequence([seed, 21]))
    noise = _venue_noise(rng, len(names), max_offset_s, stale_s)
    shares = rng.dirichlet(np.full(len(names), 3.0))
    out: dict[str, pd.DataFrame] = {}
    for v, venue in enumerate(names):
        basis = _basis(rng, len(frame), step_s) if venue in set(usd_venues) else None
        out[venue] = _derive_venue(
            rng, frame, noise.half_spread[v], noise.offset_s[v], noise.stale_s[v], step_s, shares[v], basis
        )
    return out


def group_frames(candles: Mapping[str, pd.DataFrame], members: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The member frames of one group, in member order (a convenience for evaluation code)."""
    return {m: candles[m] for m in members}


__all__ += ["group_frames"]
