"""Social volume from CSV or Parquet files (exports, research data sets).

``path`` may hold ``{symbol_file}`` (``BTC_USDT``), ``{base}``, ``{quote}``
or ``{symbol}``, so one config line serves a folder of per-coin files; a file
with a ``symbol`` column (set ``symbol_column``) serves many coins at once.
Parquet needs pyarrow; without it the error says so instead of failing
deep inside pandas. CSV files go through the strict reader every user CSV
passes (:mod:`core.csvfiles`: encoding, header, ragged rows, and each time
and value named by file, line and column when it is wrong; header names are
compared lower-case).
"""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path
from typing import Any

import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import ConfigError, DataSourceError, InputError
from feeds.social.base import empty_series, symbol_parts, to_series

__all__ = ["FileSocialSource"]

_TIME_COLUMNS = ("timestamp_ms", "timestamp", "time", "datetime", "date")


class FileSocialSource:
    """Reads ``time, value`` columns from a CSV or Parquet file per fetch.

    Options: ``path`` (required), ``time_column`` (default: the first of
    timestamp_ms, timestamp, time, datetime, date), ``value_column`` (default:
    the metric name, else the only other numeric column), ``symbol_column``
    (optional, for multi-coin files; matched against the base or the symbol).
    """

    def __init__(self, name: str, kind: str, metric: str, options: dict[str, Any]) -> None:
        if kind not in ("csv", "parquet"):
            raise ConfigError(f"social source {name!r}: kind must be csv or parquet, got {kind!r}")
        if "path" not in options:
            raise ConfigError(f"social source {name!r}: options.path is required")
        if kind == "parquet" and importlib.util.find_spec("pyarrow") is None:
            raise ConfigError(
                f"social source {name!r}: reading Parquet needs the 'pyarrow' package, which is not installed "
                '(pip install pyarrow), or use kind = "csv"'
            )
        self.name = name
        self.kind = kind
        self.metric = metric
        self.path_template = str(options["path"])
        self.time_column = options.get("time_column")
        self.value_column = options.get("value_column")
        self.symbol_column = options.get("symbol_column")

    def _read_parquet(self, path: Path) -> pd.DataFrame:
        try:
            return pd.read_parquet(path)
        except FileNotFoundError:
            raise DataSourceError(f"social source {self.name!r}: no such file {path}") from None
        except (ValueError, OSError) as err:
            raise DataSourceError(f"social source {self.name!r}: cannot read {path}: {err}") from None

    def _load(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        parts = symbol_parts(symbol)
        path = Path(self.path_template.format(**parts))
        if self.kind == "csv":
            return self._load_csv(path, parts, start_ms, end_ms)
        where = f"social source {self.name!r} ({path})"
        frame = self._read_parquet(path)
        frame.columns = [str(c).strip() for c in frame.columns]
        if self.symbol_column:
            if self.symbol_column not in frame.columns:
                raise DataSourceError(f"{where}: no column {self.symbol_column!r}")
            col = frame[self.symbol_column].astype(str).str.upper()
            frame = frame[col.isin([parts["base"], parts["symbol"], parts["symbol_file"]])]
        time_col = self.time_column or next((c for c in _TIME_COLUMNS if c in frame.columns), None)
        if time_col is None or time_col not in frame.columns:
            raise DataSourceError(f"{where}: no time column (tried {time_col or ', '.join(_TIME_COLUMNS)})")
        value_col = self.value_column
        if value_col is None:
            numeric = [c for c in frame.select_dtypes("number").columns if c not in (time_col, self.symbol_column)]
            value_col = self.metric if self.metric in frame.columns else (numeric[0] if len(numeric) == 1 else None)
        if value_col is None or value_col not in frame.columns:
            raise DataSourceError(f"{where}: set options.value_column (columns: {', '.join(frame.columns)})")
        if frame.empty:
            return empty_series(self.metric)
        times = frame[time_col]
        if pd.api.types.is_numeric_dtype(times):
            unit = "ms" if float(times.max()) > 1e11 else "s"
        else:
            unit = "iso"
        return to_series(
            times, frame[value_col], unit=unit, start_ms=start_ms, end_ms=end_ms, name=self.metric, where=where
        )

    def _load_csv(self, path: Path, parts: dict[str, str], start_ms: int, end_ms: int) -> pd.Series:
        """The strict path: every row's time and value checked, a bad one named by line (not coerced to NaN)."""
        where = f"social source {self.name!r} ({path})"
        symbol_col = self.symbol_column.strip().lower() if self.symbol_column else None
        try:
            table = read_csv_table(path, text=[symbol_col] if symbol_col else (), allow_no_rows=True)
        except InputError as err:
            if not path.is_file():
                raise DataSourceError(f"social source {self.name!r}: no such file {path}") from None
            raise DataSourceError(f"social source {self.name!r}: {err}") from None
        names = list(table.frame.columns)
        if symbol_col and symbol_col not in names:
            raise DataSourceError(f"{where}: no column {self.symbol_column!r}")
        time_col = (self.time_column or "").strip().lower() or next((c for c in _TIME_COLUMNS if c in names), None)
        if time_col is None or time_col not in names:
            raise DataSourceError(f"{where}: no time column (tried {time_col or ', '.join(_TIME_COLUMNS)})")
        value_col = (self.value_column or "").strip().lower() or None
        if value_col is None:
            numeric = [c for c in table.frame.select_dtypes("number").columns if c not in (time_col, symbol_col)]
            metric = self.metric.lower()
            value_col = metric if metric in names else (numeric[0] if len(numeric) == 1 else None)
        if value_col is None or value_col not in names:
            raise DataSourceError(f"{where}: set options.value_column (columns: {', '.join(names)})")
        if table.frame.empty:
            return empty_series(self.metric)
        try:
            times = table.times(time_col, "iso_or_epoch")
            values = table.numbers(value_col, blank_ok=True)
        except InputError as err:
            raise DataSourceError(f"social source {self.name!r}: {err}") from None
        if symbol_col:
            mine = table.text(symbol_col).str.upper().isin([parts["base"], parts["symbol"], parts["symbol_file"]])
            times, values = times[mine.to_numpy()], values[mine.to_numpy()]
        return to_series(
            times.as_unit("ms").asi8, values, unit="ms", start_ms=start_ms, end_ms=end_ms, name=self.metric, where=where
        )

    async def fetch(self, symbol: str, start_ms: int, end_ms: int) -> pd.Series:
        return await asyncio.to_thread(self._load, symbol, start_ms, end_ms)
