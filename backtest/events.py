"""Events in: from a CSV file or the database, filtered by a strategy, put on the bar grid.

An event's ``timestamp`` is the *open time of the bar whose close revealed
it*. That is the contract with the detectors (``storage.events`` stores
``bar_ts`` the same way), and it is what makes the backtest causal: the
earliest a strategy can act on it is the next bar's open.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from backtest.strategy import Strategy
from core.csvfiles import read_csv_table
from core.errors import InputError
from storage.models import SEVERITY_RANK

__all__ = ["EVENT_COLUMNS", "events_to_csr", "filter_events", "normalize_events", "read_events_csv"]

EVENT_COLUMNS = ("timestamp", "score", "detector", "symbol", "severity")
_SEVERITY_RANK = SEVERITY_RANK  # the one order of severities (storage.models)


def _parse_times(values: pd.Series, where: str) -> pd.Series:
    text = values.astype(str).str.strip()
    numeric = pd.to_numeric(text, errors="coerce")
    if numeric.notna().all():
        if (numeric % 1 != 0).any() or (numeric < 10**11).any():
            i = int(np.flatnonzero(((numeric % 1 != 0) | (numeric < 10**11)).to_numpy())[0])
            raise InputError(f"{where}: row {i + 1}: timestamp {text.iat[i]!r}: expected epoch milliseconds")
        return pd.Series(pd.to_datetime(numeric.astype("int64"), unit="ms", utc=True), index=values.index)
    parsed = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().any():
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(f"{where}: row {i + 1}: timestamp {text.iat[i]!r}: expected ISO-8601 or epoch milliseconds")
    return parsed


def _each_distinct(values: pd.Series, fn: Callable[[str], str]) -> np.ndarray:
    """``fn`` applied to each distinct string once (symbols and severities repeat over millions of events)."""
    codes, uniques = pd.factorize(values.astype(str).to_numpy(dtype=object))
    return np.array([fn(u) for u in uniques] or [""], dtype=object)[codes]


def normalize_events(frame: pd.DataFrame, *, where: str = "events", default_symbol: str | None = None) -> pd.DataFrame:
    """A frame with ``timestamp`` (UTC), ``score`` (float), ``detector``, ``symbol``, ``severity``; sorted by time."""
    cols = {c.strip().lower(): c for c in frame.columns}
    for needed in ("timestamp", "score"):
        if needed not in cols:
            raise InputError(f"{where}: needs a {needed!r} column, got {', '.join(map(str, frame.columns)) or 'none'}")
    out = pd.DataFrame(index=frame.index)
    ts = frame[cols["timestamp"]]
    out["timestamp"] = ts if isinstance(ts.dtype, pd.DatetimeTZDtype) else _parse_times(ts, where)
    out["timestamp"] = out["timestamp"].dt.tz_convert("UTC")
    score = pd.to_numeric(frame[cols["score"]], errors="coerce")
    if score.isna().any():
        i = int(np.flatnonzero(score.isna().to_numpy())[0])
        raise InputError(f"{where}: row {i + 1}: score {frame[cols['score']].iat[i]!r}: expected a number")
    out["score"] = score.astype("float64")
    out["detector"] = frame[cols["detector"]].astype(str) if "detector" in cols else ""
    if "symbol" in cols:
        out["symbol"] = _each_distinct(frame[cols["symbol"]], str.upper)
    else:
        out["symbol"] = default_symbol or ""
    out["severity"] = _each_distinct(frame[cols["severity"]], str.lower) if "severity" in cols else "low"
    if "move" in cols:  # which way the market moved at the event (direction "against" trades against it)
        out["move"] = pd.to_numeric(frame[cols["move"]], errors="coerce").astype("float64")
    return out.sort_values("timestamp", kind="stable").reset_index(drop=True)


def read_events_csv(path: str | Path, *, default_symbol: str | None = None) -> pd.DataFrame:
    """Read an events CSV: ``timestamp`` (ISO-8601 or epoch ms), ``score``; optional ``detector``, ``symbol``, severity.

    The file is read by :mod:`core.csvfiles`, so a bad value is named by file,
    line, column and value. Scores may be infinite but not blank; a severity,
    when given, is one of low/medium/high (an unknown one would never pass a
    strategy's ``min_severity`` and silently drop the event).
    """
    table = read_csv_table(path, required=["timestamp", "score"], text=["detector", "symbol", "severity"])
    frame = pd.DataFrame(
        {
            "timestamp": table.times("timestamp", "iso_or_ms"),
            "score": table.numbers("score", finite=False),
            **{c: table.text(c).to_numpy() for c in ("detector", "symbol", "severity") if table.has(c)},
            **({"move": table.numbers("move")} if table.has("move") else {}),
        }
    )
    if table.has("severity"):
        unknown = ~pd.Series(_each_distinct(frame["severity"], str.lower)).isin(list(_SEVERITY_RANK))
        table.fail_first(unknown.to_numpy(), "severity", f"expected one of {', '.join(_SEVERITY_RANK)}")
    return normalize_events(frame, where=str(table.path), default_symbol=default_symbol)


def filter_events(events: pd.DataFrame, strategy: Strategy) -> pd.DataFrame:
    """The events the strategy's trigger accepts (detector, severity, symbols; score is per column)."""
    keep = np.ones(len(events), dtype=bool)
    if strategy.detector is not None:
        keep &= (events["detector"] == strategy.detector).to_numpy()
    if strategy.min_severity is not None:
        rank = events["severity"].map(_SEVERITY_RANK).fillna(-1).to_numpy()
        keep &= rank >= _SEVERITY_RANK[strategy.min_severity]
    if strategy.symbols is not None:
        keep &= events["symbol"].isin(strategy.symbols).to_numpy()
    return events.loc[keep]


def events_to_csr(
    events: pd.DataFrame, index: pd.DatetimeIndex, symbols: list[str], *, where: str = "events"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map events to bar positions, grouped by symbol (CSR, sorted by bar within a symbol).

    Events of symbols not in ``symbols`` are dropped (they have no candles);
    an event whose timestamp is not a bar open time of ``index`` raises
    ``InputError`` naming the timestamp: silently snapping it to a bar
    could move it earlier than its data allowed.

    Returns
    -------
    ev_ptr : ndarray, shape (n_symbols + 1,)
    ev_bar : ndarray, shape (n_events,)
    ev_score : ndarray, shape (n_events,)
    """
    if symbols == [""]:  # one unnamed candle series: every event is about it
        mine = events
        sym_pos = np.zeros(len(mine), dtype=np.int64)
    elif len(symbols) == 1:
        mine = events.loc[events["symbol"].isin([symbols[0], ""])]
        sym_pos = np.zeros(len(mine), dtype=np.int64)
    else:
        mine = events.loc[events["symbol"].isin(symbols)]
        sym_pos = pd.Index(symbols).get_indexer(mine["symbol"]).astype(np.int64)
    bars = index.get_indexer(pd.DatetimeIndex(mine["timestamp"]).as_unit(index.unit))
    if (bars < 0).any():
        i = int(np.flatnonzero(bars < 0)[0])
        ts = mine["timestamp"].iat[i]
        raise InputError(
            f"{where}: event timestamp {ts.isoformat()} ({int(ts.value // 10**6)} ms) is not a bar open time "
            f"of the candles ({index[0].isoformat()} .. {index[-1].isoformat()})"
        )
    order = np.lexsort((bars, sym_pos))
    ev_ptr = np.zeros(len(symbols) + 1, dtype=np.int64)
    np.cumsum(np.bincount(sym_pos, minlength=len(symbols)), out=ev_ptr[1:])
    return ev_ptr, bars[order].astype(np.int64), mine["score"].to_numpy(dtype=np.float64)[order]
