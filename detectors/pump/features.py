"""Pump-and-dump features: pure functions, no I/O except the validated file reader.

Two grains feed the same CNN-LSTM:

* La Morgia et al. chunk features, either read from a labelled features file
  (``read_feature_file``) or computed from public trades (``trades_to_chunks``);
* one-minute candles (``candle_market_features``) when trades are not available,
  plus the optional ``social_volume`` column (``social_features``).

Windows are built per event / per symbol and only ever look back
(``causal_windows``), and every window is scaled by its own past rows
(``scale_windows``), so a coin's price level or volume never leaks between coins
and no future row is ever used.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import InputError

__all__ = [
    "CANDLE_MARKET_COLUMNS",
    "LA_MORGIA_COLUMNS",
    "SCALE_COLUMNS_CANDLES",
    "SOCIAL_COLUMNS",
    "SOCIAL_HISTORY",
    "candle_feature_arrays",
    "candle_market_features",
    "causal_windows",
    "feature_columns",
    "read_feature_file",
    "scale_windows",
    "social_features",
    "trades_to_chunks",
]

#: Feature columns of a La Morgia features file, rush-order names first; ``std_order``/``avg_order`` are accepted too.
LA_MORGIA_COLUMNS = [
    "std_rush_order",
    "avg_rush_order",
    "std_trades",
    "std_volume",
    "avg_volume",
    "std_price",
    "avg_price",
    "avg_price_max",
    "hour_sin",
    "hour_cos",
    "minute_sin",
    "minute_cos",
]
_ALIASES = {"std_order": "std_rush_order", "avg_order": "avg_rush_order"}
#: Columns whose level depends on the coin; they are scaled by the window's past rows.
_SCALE_LA_MORGIA = LA_MORGIA_COLUMNS[:8]
_REQUIRED_META = ["date", "pump_index", "symbol", "gt"]

CANDLE_MARKET_COLUMNS = [
    "close",
    "high",
    "volume",
    "quote_volume",
    "range",
    "ret",
    "gap",
    "body",
    "upper_wick",
    "lower_wick",
    "ret_z",
]
SCALE_COLUMNS_CANDLES = ["close", "high", "volume", "quote_volume", "range"]
SOCIAL_COLUMNS = ["social_level", "social_log", "social_diff", "social_jump", "social_share"]


def feature_columns(grain: str) -> tuple[list[str], list[str]]:
    """(all market columns, the scale-dependent subset) for ``grain`` ``"chunks"`` or ``"candles"``."""
    if grain == "chunks":
        return list(LA_MORGIA_COLUMNS), list(_SCALE_LA_MORGIA)
    if grain == "candles":
        return list(CANDLE_MARKET_COLUMNS), list(SCALE_COLUMNS_CANDLES)
    raise ValueError(f"unknown grain {grain!r}: expected 'chunks' or 'candles'")


def read_feature_file(path: str | Path, *, require_label: bool = True) -> pd.DataFrame:
    """Read and check a La Morgia features file; errors name the file, column and line.

    Returns the frame with canonical column names (``std_order`` -> ``std_rush_order``),
    a ``line`` column (1-based line number in the file, header = line 1), ``date`` parsed,
    and ``gt`` as int. Rows of one event must be consecutive (sequences never cross events).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: features file not found")
    table = read_csv_table(path, text=["date", "symbol"])  # encoding, header, ragged rows: core/csvfiles.py
    frame = table.frame
    frame.columns = [_ALIASES.get(c, c) for c in frame.columns]  # the same frame the table's parsers read
    required = _REQUIRED_META + LA_MORGIA_COLUMNS
    if not require_label:
        required = [c for c in required if c != "gt"]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        hint = " (std_order/avg_order are accepted for the rush-order columns)" if "std_rush_order" in missing else ""
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}{hint}")
    numeric = LA_MORGIA_COLUMNS + ["pump_index"] + (["gt"] if "gt" in frame.columns else [])
    values = {col: table.numbers(col) for col in numeric}  # finite numbers, or file:line: column 'c': ... got 'v'
    table.fail_first(values["pump_index"] % 1 != 0, "pump_index", "expected a whole number")
    if "gt" in values:
        table.fail_first(~np.isin(values["gt"], [0.0, 1.0]), "gt", "label must be 0 or 1")
    dates = pd.to_datetime(table.text("date"), errors="coerce", utc=True)
    table.fail_first(dates.isna().to_numpy(), "date", "cannot parse the date")
    for col, vals in values.items():
        frame[col] = vals
    frame["date"] = dates
    frame["symbol"] = table.text("symbol").to_numpy()
    frame["pump_index"] = frame["pump_index"].astype(np.int64)
    if "gt" in frame.columns:
        frame["gt"] = frame["gt"].astype(np.int64)
    frame["line"] = table.lines()
    _check_consecutive_events(frame, path)
    return frame


def _check_consecutive_events(frame: pd.DataFrame, path: Path) -> None:
    """Every event's rows form one block, in time order (else its sequences would interleave)."""
    ids = frame["pump_index"].to_numpy()
    starts = np.r_[True, ids[1:] != ids[:-1]]
    block_ids = ids[starts]
    seen: set[int] = set()
    lines = frame["line"].to_numpy()[starts]
    for event, line in zip(block_ids.tolist(), lines.tolist(), strict=True):
        if event in seen:
            raise InputError(
                f"{path}: line {line}, column pump_index: rows of event {event} are not consecutive "
                "(an event's rows must be one block in time order)"
            )
        seen.add(event)
    back = frame.groupby("pump_index", sort=False)["date"].diff() < pd.Timedelta(0)
    if back.any():
        first = int(np.flatnonzero(back.to_numpy())[0])
        line = int(frame["line"].iloc[first])
        raise InputError(f"{path}: line {line}, column date: goes back in time inside event {ids[first]}")


def causal_windows(values: np.ndarray, groups: np.ndarray, steps: int, rows: np.ndarray | None = None) -> np.ndarray:
    """For every row, the ``steps`` rows of its group ending at it (edge-padded at the group start).

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_features)
    groups : ndarray, shape (n_rows,); rows of a group are consecutive and in time order
    steps : int
    rows : ndarray of int, optional; build windows only for these rows (default: every row)

    Returns
    -------
    ndarray, shape (n_rows or len(rows), steps, n_features). Row ``i``'s window holds rows ``<= i`` of its
    own group only; before the group has ``steps`` rows its first row is repeated.
    """
    n = len(values)
    if n == 0:
        return np.zeros((0, steps, values.shape[1]), dtype=np.float32)
    starts = np.r_[True, groups[1:] != groups[:-1]]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    at = np.arange(n) if rows is None else np.asarray(rows)
    offsets = np.arange(-steps + 1, 1)
    idx = at[:, None] + offsets[None, :]
    idx = np.maximum(idx, group_start[at][:, None])
    return values[idx].astype(np.float32)


def scale_windows(windows: np.ndarray, scale_idx: list[int]) -> np.ndarray:
    """Scale-free windows: for each scale column, its log level against the window's past and its step change.

    Level ``log((x + e) / (m + e))`` with ``m`` the median of the window's earlier rows and
    ``e = m / 100`` (so zeros stay finite); step = the level's change from the previous row (the
    pump signal in smoothed chunk features is a change of a few per mille, invisible in levels).
    The other columns (returns, sine/cosine of time) pass through. Only rows inside the window
    are used, so the result stays causal.

    Parameters
    ----------
    windows : ndarray, shape (n, steps, n_features)
    scale_idx : list of int, the columns to scale

    Returns
    -------
    ndarray, shape (n, steps, n_features + len(scale_idx)): the scaled levels in place, the
    step changes appended at the end.
    """
    out = windows.astype(np.float32, copy=True)
    if not scale_idx or len(out) == 0:
        return np.concatenate([out, np.zeros(out.shape[:2] + (len(scale_idx),), np.float32)], axis=2)
    part = np.abs(out[:, :, scale_idx])
    past = part[:, :-1, :] if part.shape[1] > 1 else part
    denom = np.median(past, axis=1, keepdims=True)
    fallback = np.max(part, axis=1, keepdims=True)
    denom = np.where(denom > 0, denom, fallback)
    denom = np.where(denom > 0, denom, 1.0)
    eps = denom / 100.0
    level = np.clip(np.log((part + eps) / (denom + eps)), -10.0, 10.0)
    step = np.diff(level, axis=1, prepend=level[:, :1, :])
    out[:, :, scale_idx] = level
    out = np.concatenate([out, step.astype(np.float32)], axis=2)
    return np.nan_to_num(out, nan=0.0, posinf=10.0, neginf=-10.0)


def _time_of_day(index: pd.DatetimeIndex) -> dict[str, np.ndarray]:
    hour = index.hour.to_numpy(dtype=float)
    minute = index.minute.to_numpy(dtype=float)
    return {
        "hour_sin": np.sin(2 * np.pi * hour / 24),
        "hour_cos": np.cos(2 * np.pi * hour / 24),
        "minute_sin": np.sin(2 * np.pi * minute / 60),
        "minute_cos": np.cos(2 * np.pi * minute / 60),
    }


SOCIAL_HISTORY = 24  # past bars the social and volatility features compare against


def _trailing(values: np.ndarray, history: int, stat: str) -> np.ndarray:
    """Per bar, ``stat`` (``"median"``, ``"std"`` or ``"sum"``) of the ``history`` bars before it.

    Parameters
    ----------
    values : ndarray, shape (n_symbols, n_bars)

    Returns
    -------
    ndarray, shape (n_symbols, n_bars); bar ``t`` uses bars ``t - history .. t - 1`` only (fewer at the
    start, NaN for the first bar).
    """
    n_sym = values.shape[0]
    padded = np.concatenate([np.full((n_sym, history), np.nan), values], axis=1)
    past = np.lib.stride_tricks.sliding_window_view(padded[:, :-1], history, axis=1)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if stat == "median":
            return np.nanmedian(past, axis=-1)
        if stat == "std":
            return np.nanstd(past, axis=-1)
        return np.nansum(past, axis=-1)


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.clip(np.nan_to_num(np.log(a / b), nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)


def candle_feature_arrays(ohlcv: np.ndarray, social: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-bar market and social features for a stack of equally long candle frames, in numpy.

    Vectorized over symbols so the live loop computes 500 symbols' features in one pass. Bar
    ``t`` uses bars ``<= t`` only (trailing statistics use at most ``SOCIAL_HISTORY`` earlier
    bars). Trades-only features (rush orders, trade counts) cannot be derived from candles.

    Besides levels (close, high, volume, quote volume, range; scaled per window later) the
    market part splits the close-to-close return into the ``gap`` from the previous close to
    this open and the ``body`` from open to close, adds both wicks, and the return in units of
    the symbol's own recent volatility (``ret_z``). Why: a pump climbs inside its bars on
    heavy volume; a level shift jumps between bars on a thin one; a quiet coin's 1 % move is
    news, a wild coin's is not. There is no time of day: on synthetic markets it let the
    network memorise when the training pumps happened (false alarms on quiet bars).

    Parameters
    ----------
    ohlcv : ndarray, shape (n_symbols, n_bars, 5), columns open, high, low, close, volume
    social : ndarray, shape (n_symbols, n_bars), mentions per bar, NaN when unknown; or None

    Returns
    -------
    market : (n_symbols, n_bars, 11), columns ``CANDLE_MARKET_COLUMNS``
    social : (n_symbols, n_bars, 5), columns ``SOCIAL_COLUMNS`` (0 where unknown)
    has_social : (n_symbols, n_bars), 1.0 where the bar's social volume is known
    """
    o, h, lo, c, v = (ohlcv[..., i].astype(float) for i in range(5))
    prev = np.concatenate([c[:, :1], c[:, :-1]], axis=1)
    ret = _log_ratio(c, prev)
    vol = np.nan_to_num(_trailing(ret, SOCIAL_HISTORY, "std"), nan=0.0)
    floor = 1e-4  # a stale run (repeated candles) has zero volatility
    ret_z = np.clip(ret / np.maximum(vol, floor), -50.0, 50.0)
    market = np.stack(
        [
            c,
            h,
            v,
            v * c,
            h - lo,
            ret,
            _log_ratio(o, prev),
            _log_ratio(c, o),
            _log_ratio(h, np.maximum(o, c)),
            _log_ratio(np.minimum(o, c), lo),
            ret_z,
        ],
        axis=-1,
    )
    market = np.nan_to_num(market, nan=0.0)
    n_sym, n_bars = c.shape
    if social is None:
        return market, np.zeros((n_sym, n_bars, len(SOCIAL_COLUMNS))), np.zeros((n_sym, n_bars))
    has = (~np.isnan(social)).astype(float)
    s = np.clip(np.nan_to_num(social, nan=0.0), 0.0, None)
    past_median = np.nan_to_num(_trailing(s, SOCIAL_HISTORY, "median"), nan=0.0)
    past_total = _trailing(s, SOCIAL_HISTORY, "sum")
    log = np.log1p(s)
    feats = np.stack(
        [
            np.log1p(s / (past_median + 1.0)),
            log,
            np.diff(log, axis=1, prepend=log[:, :1]),
            log - np.log1p(past_median),
            s / (past_total + s + 1.0),
        ],
        axis=-1,
    )
    return market, feats * has[..., None], has


def candle_market_features(candles: pd.DataFrame) -> pd.DataFrame:
    """``candle_feature_arrays``' market part for one candle frame, as a frame on its index."""
    market, _, _ = _one_frame(candles)
    return pd.DataFrame(market[0], index=candles.index, columns=CANDLE_MARKET_COLUMNS)


def social_features(candles: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Social features (``SOCIAL_COLUMNS``) and the per-row has-social flag, shape (n_rows,).

    A row has social data when ``social_volume`` is present and not NaN; otherwise its social
    features are zero and the flag is 0, which the network learned to treat as "unknown".
    """
    _, social, has = _one_frame(candles)
    return pd.DataFrame(social[0], index=candles.index, columns=SOCIAL_COLUMNS), has[0].astype(np.float32)


def _one_frame(candles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ohlcv = candles[["open", "high", "low", "close", "volume"]].to_numpy(dtype=float)[None]
    social = candles["social_volume"].to_numpy(dtype=float)[None] if "social_volume" in candles.columns else None
    return candle_feature_arrays(ohlcv, social)


def trades_to_chunks(trades: pd.DataFrame, chunk: str = "60s", window: int = 60) -> pd.DataFrame:
    """La Morgia chunk features from public trades (what ``ExchangeFeed.fetch_trades`` returns).

    Buy trades sharing one millisecond timestamp are one market order that walked the book: a
    *rush order* when it has more than one fill. Per chunk we count orders, rush orders, volume,
    last price and max price; the features are then the rolling (causal, ``window`` chunks) std
    and mean of those counts, as in La Morgia et al.

    Parameters
    ----------
    trades : DataFrame with ``timestamp`` (int ms), ``price``, ``amount``, ``side``; shape (n_trades, 4)
    chunk : pandas offset alias of the chunk size
    window : rolling window in chunks

    Returns
    -------
    DataFrame indexed by chunk start (UTC), columns ``LA_MORGIA_COLUMNS``. Empty chunks between
    the first and last trade carry zero orders and the previous price.
    """
    missing = [c for c in ("timestamp", "price", "amount", "side") if c not in trades.columns]
    if missing:
        raise InputError(f"trades frame: missing column(s) {', '.join(missing)}")
    if trades.empty:
        return pd.DataFrame(columns=LA_MORGIA_COLUMNS, dtype=float)
    t = trades[["timestamp", "price", "amount", "side"]].copy()
    t["is_buy"] = (t["side"] == "buy").astype(np.int64)
    orders = t.groupby(["timestamp", "is_buy"], sort=True).agg(
        fills=("price", "size"), price=("price", "last"), price_max=("price", "max"), volume=("amount", "sum")
    )
    orders = orders.reset_index()
    orders["rush"] = ((orders["is_buy"] == 1) & (orders["fills"] > 1)).astype(np.int64)
    orders.index = pd.to_datetime(orders["timestamp"], unit="ms", utc=True)
    per_chunk = orders.resample(chunk).agg(
        {"rush": "sum", "fills": "size", "volume": "sum", "price": "last", "price_max": "max"}
    )
    per_chunk = per_chunk.rename(columns={"fills": "trades"})
    per_chunk["price"] = per_chunk["price"].ffill()
    per_chunk["price_max"] = per_chunk["price_max"].fillna(per_chunk["price"])
    roll = per_chunk.rolling(window, min_periods=1)
    std = roll.std(ddof=0).fillna(0.0)
    mean = roll.mean()
    out = pd.DataFrame(
        {
            "std_rush_order": std["rush"],
            "avg_rush_order": mean["rush"],
            "std_trades": std["trades"],
            "std_volume": std["volume"],
            "avg_volume": mean["volume"],
            "std_price": std["price"],
            "avg_price": mean["price"],
            "avg_price_max": mean["price_max"],
            **_time_of_day(pd.DatetimeIndex(per_chunk.index)),
        },
        index=per_chunk.index,
    )
    return out[LA_MORGIA_COLUMNS]
