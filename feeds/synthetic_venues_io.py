"""Writing a :class:`~feeds.synthetic_venues.VenueMarket` in the import formats.

One folder per venue holding ``<BASE_QUOTE>-<tf>.csv`` candles (what ``vigil import-candles
--exchange <venue>`` reads), ``groups.csv`` (``group,venue,symbol``) and ``labels.csv``
(``group,venue,symbol,start,end,kind``, ISO-8601 UTC bar-open times, inclusive).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.errors import InputError
from feeds.synthetic_io import file_stem
from feeds.synthetic_venues import VenueMarket
from storage.candle_csv import write_candle_csv

__all__ = ["write_venue_market"]


def write_venue_market(market: VenueMarket, out: str | Path) -> list[Path]:
    """Write every venue's candles, the group table and the labels; returns the paths written."""
    directory = Path(out)
    if directory.exists() and not directory.is_dir():
        raise InputError(f"--out: {directory} exists and is not a directory")
    written: list[Path] = []
    rows = []
    for group, members in market.groups.items():
        for key in members:
            venue, _, symbol = key.partition(":")
            folder = directory / venue
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{file_stem(symbol, market.timeframe)}.csv"
            write_candle_csv(market.candles[key], path)
            written.append(path)
            rows.append({"group": group, "venue": venue, "symbol": symbol})
    groups_path = directory / "groups.csv"
    pd.DataFrame(rows, columns=["group", "venue", "symbol"]).to_csv(groups_path, index=False)
    labels = market.labels.copy()
    for col in ("start", "end"):
        labels[col] = labels[col].map(lambda t: t.isoformat())
    labels_path = directory / "labels.csv"
    labels.to_csv(labels_path, index=False)
    return [*written, groups_path, labels_path]
