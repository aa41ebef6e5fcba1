"""Writing a :class:`~feeds.synthetic.SyntheticMarket` to disk in the import formats.

Files (``<name>`` is the symbol with ``/`` replaced by ``_``):

* ``<name>-<tf>.csv``: candles, ``timestamp_ms,open,high,low,close,volume``
  (what ``vigil import-candles`` reads);
* ``social-<name>-<tf>.csv``: ``timestamp_ms,social_volume`` (mentions per bar);
* ``labels.csv``: ``symbol,start,end,kind`` with ISO-8601 UTC bar-open times, both ends inclusive.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import InputError
from feeds.synthetic import SyntheticMarket
from storage.candle_csv import write_candle_csv

__all__ = ["file_stem", "read_labels", "write_market"]


def file_stem(symbol: str, timeframe: str) -> str:
    """``BTC/USDT``, ``1h`` -> ``BTC_USDT-1h`` (the naming of ``/work/shared/data/candles``)."""
    return f"{symbol.replace('/', '_')}-{timeframe}"


def write_market(market: SyntheticMarket, out: str | Path, *, on_file: Callable[[], None] | None = None) -> list[Path]:
    """Write every symbol's candles and social series, then ``labels.csv``; returns the paths written."""
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--out: {directory} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for symbol, frame in market.candles.items():
        stem = file_stem(symbol, market.timeframe)
        candle_path = directory / f"{stem}.csv"
        write_candle_csv(frame, candle_path)
        social_path = directory / f"social-{stem}.csv"
        pd.DataFrame(
            {"timestamp_ms": frame.index.as_unit("ms").asi8, "social_volume": frame["social_volume"].to_numpy()}
        ).to_csv(social_path, index=False, float_format="%.10g")
        written += [candle_path, social_path]
        if on_file is not None:
            on_file()
    labels_path = directory / "labels.csv"
    labels = market.labels.copy()
    for col in ("start", "end"):
        labels[col] = labels[col].map(lambda t: t.isoformat())
    labels[["symbol", "start", "end", "kind"]].to_csv(labels_path, index=False)
    written.append(labels_path)
    return written


def read_labels(path: str | Path) -> pd.DataFrame:
    """Read a ``labels.csv`` back with UTC timestamps (strictly: :mod:`core.csvfiles`; errors name the line)."""
    columns = ["symbol", "start", "end", "kind"]
    table = read_csv_table(path, required=columns, text=["symbol", "kind"], allow_no_rows=True)
    if table.frame.empty:
        return pd.DataFrame({c: [] for c in columns})
    return pd.DataFrame(
        {
            "symbol": table.text("symbol").to_numpy(),
            "start": table.times("start", "iso"),
            "end": table.times("end", "iso"),
            "kind": table.text("kind").to_numpy(),
        }
    )
