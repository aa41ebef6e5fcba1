"""A feed that replays stored frames as if they arrived live.

``vigil demo`` runs the very same loop as ``vigil run``; only the feed
differs. A replay feed holds complete candle frames (from the synthetic
market or from CSV files) and, asked at simulated time ``now_ms``, answers
with the bars that had closed by then, exactly as an exchange would. The loop
cannot see the future because the feed refuses to serve it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import BadSymbolError, InputError
from core.timeframes import timeframe_to_ms

__all__ = ["ReplayFeed", "ReplaySocialSource", "load_csv_dir"]


class ReplayFeed:
    """Serves closed candles (and social volume) from frames, up to a simulated clock."""

    def __init__(self, name: str, frames: Mapping[str, pd.DataFrame], timeframe: str) -> None:
        self.name = name
        self.timeframe = timeframe
        self._step = timeframe_to_ms(timeframe)
        self._frames = {s: f.sort_index() for s, f in frames.items()}
        self._ts = {s: f.index.as_unit("ms").asi8 for s, f in self._frames.items()}

    @property
    def symbols(self) -> list[str]:
        return sorted(self._frames)

    def span_ms(self) -> tuple[int, int]:
        """First open time and last close time over all symbols."""
        first = min(int(t[0]) for t in self._ts.values() if len(t))
        last = max(int(t[-1]) for t in self._ts.values() if len(t)) + self._step
        return first, last

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> ReplayFeed:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def validate_symbol(self, symbol: str) -> str:
        sym = symbol.upper()
        if sym not in self._frames:
            err = BadSymbolError(f"{self.name}: unknown symbol {symbol!r}")
            err.suggestions = self.symbols[:5]  # type: ignore[attr-defined]
            raise err
        return sym

    def validate_timeframe(self, timeframe: str) -> str:
        if timeframe != self.timeframe:
            raise InputError(f"{self.name} does not offer {timeframe} candles (it offers {self.timeframe})")
        return timeframe

    async def fetch_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int | None,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> pd.DataFrame:
        """Bars with open time >= since_ms whose close (open + step) is <= now_ms."""
        if timeframe != self.timeframe:
            raise BadSymbolError(f"{self.name}: replay has {self.timeframe} bars, not {timeframe}")
        sym = await self.validate_symbol(symbol)
        frame, ts = self._frames[sym], self._ts[sym]
        mask = np.ones(len(ts), dtype=bool)
        if since_ms is not None:
            mask &= ts >= since_ms
        if until_ms is not None:
            mask &= ts < until_ms
        if now_ms is not None:
            mask &= ts + self._step <= now_ms
        return frame.loc[mask, ["open", "high", "low", "close", "volume"]]

    async def iter_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> AsyncIterator[pd.DataFrame]:
        """The same bars as :meth:`fetch_closed_candles`, as one page (what ``sync_candles`` consumes)."""
        page = await self.fetch_closed_candles(symbol, timeframe, since_ms, until_ms=until_ms, now_ms=now_ms)
        if len(page):
            yield page

    def social_source(self) -> ReplaySocialSource:
        """The frames' ``social_volume`` column as a social source (a SocialSource)."""
        return ReplaySocialSource(self)


class ReplaySocialSource:
    """Replays the ``social_volume`` column of a replay feed's frames as mentions per bar.

    A bar's count is stamped with its open time, as a per-bar social API would
    report it, so asking up to ``now`` returns only bars that have closed.
    """

    metric = "social_volume"

    def __init__(self, feed: ReplayFeed) -> None:
        self.feed = feed
        self.name = f"{feed.name}-social"

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        frame = self.feed._frames.get(symbol.upper())
        if frame is None or "social_volume" not in frame:
            return pd.Series([], index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype="float64")
        ts = self.feed._ts[symbol.upper()]
        mask = (ts >= start_ms) & (ts < end_ms)
        return frame.loc[mask, "social_volume"].dropna().astype("float64")


def _read_social(path: Path) -> pd.Series:
    """``social-<candle file>``: a time column (epoch ms/s or ISO) then the mentions per bar (blank = missing)."""
    table = read_csv_table(path)
    if len(table.frame.columns) < 2:
        raise InputError(f"{path}:1: expected a time column and a value column, got {','.join(table.frame.columns)!r}")
    time_col, value_col = table.frame.columns[:2]
    index = table.times(time_col, "iso_or_epoch")
    values = table.numbers(value_col, blank_ok=True)
    table.fail_first(index.duplicated(), time_col, "duplicate timestamp")
    return pd.Series(values, index=index.rename("time"), name="social_volume")


def load_csv_dir(directory: str | Path, timeframe: str | None = None) -> tuple[dict[str, pd.DataFrame], str]:
    """Candle CSVs named ``BASE_QUOTE-<tf>.csv`` (as ``vigil synth`` and the shared data name them).

    Returns frames keyed by ``BASE/QUOTE`` and the timeframe. Files of other
    timeframes than ``timeframe`` (default: the most common one) are skipped.
    """
    from storage.candle_csv import read_candle_csv

    folder = Path(directory)
    if not folder.is_dir():
        raise InputError(f"--csv-dir: not a directory: {folder}")
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.glob("*-*.csv")):
        stem, _, tf = path.stem.rpartition("-")
        if "_" not in stem or stem.startswith("social"):
            continue
        try:
            timeframe_to_ms(tf)
        except ValueError:
            continue
        found.setdefault(tf, []).append(path)
    if not found:
        raise InputError(f"--csv-dir {folder}: no candle files named like BTC_USDT-1h.csv")
    tf = timeframe or max(found, key=lambda k: len(found[k]))
    if tf not in found:
        raise InputError(f"--csv-dir {folder}: no {tf} candle files (found: {', '.join(sorted(found))})")
    frames = {}
    for path in found[tf]:
        symbol = path.stem.rpartition("-")[0].replace("_", "/").upper()
        frame = read_candle_csv(path)
        social = path.with_name(f"social-{path.name}")
        if social.is_file():
            frame["social_volume"] = _read_social(social).reindex(frame.index)
        frames[symbol] = frame
    return frames, tf
