"""Reading the files the detector commands take: series CSVs, score CSVs, label CSVs.

Series: a ``timestamp`` column (ISO-8601, epoch seconds or epoch milliseconds) or
``timestamp_ms``, plus numeric columns (a candle CSV in the import format works, and
so does a lone ``value`` column). Labels: ``start,end`` (ISO or epoch ms), optional
``symbol,kind``. The files are read by :mod:`core.csvfiles` (encoding, header, field
counts, values), so errors name the file, line, column and value.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import InputError

__all__ = ["read_labels", "read_scores", "read_series_csv", "repeated_timestamps_note"]

_TIME_COLUMNS = ("timestamp", "timestamp_ms", "time", "date")


def read_series_csv(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A numeric frame indexed by UTC time, sorted; every non-time column must be numeric.

    Blank or ``nan`` cells are missing values (NaN); anything else that is not a
    finite number is refused. Repeated timestamps (NAB's files repeat ``03:00:00`` across a
    daylight-saving change) are kept: rows are sorted by time stably, so rows with the same
    time keep their file order; ``frame.attrs["repeated_timestamps"]`` says how many and where
    the first is (see :func:`repeated_timestamps_note`). A file whose local clock goes back
    an hour gets that hour's rows interleaved by the sort: write such files in UTC.
    """
    table = read_csv_table(path, text=["symbol"])
    names = list(table.frame.columns)
    tcol = next((c for c in _TIME_COLUMNS if c in names), None)
    if tcol is None:
        raise InputError(
            f"{table.path}:1: header needs a 'timestamp' or 'timestamp_ms' column, got {','.join(names)!r}"
        )
    index = table.times(tcol, "iso_or_epoch")
    wanted = columns or [c for c in names if c not in {tcol, "symbol"}]
    missing = [c for c in wanted if c not in names]
    if missing:
        raise InputError(f"{table.path}:1: column(s) {', '.join(missing)} not in the header ({','.join(names)})")
    if not wanted:
        raise InputError(f"{table.path}:1: no value columns besides {tcol!r}")
    frame = pd.DataFrame({col: table.numbers(col, blank_ok=True) for col in wanted}, index=index.rename("time"))
    repeated = frame.index.duplicated()
    if repeated.any():
        i = int(repeated.nonzero()[0][0])
        frame.attrs["repeated_timestamps"] = {
            "rows": int(repeated.sum()),
            "line": table.line(i),
            "value": table.raw_value(i, tcol),
        }
    return frame.sort_index(kind="stable")


def repeated_timestamps_note(frame: pd.DataFrame, path: str | Path) -> str | None:
    """One line saying what :func:`read_series_csv` did with repeated timestamps (None if none)."""
    info = frame.attrs.get("repeated_timestamps")
    if not info:
        return None
    return (
        f"{path}: {info['rows']} row(s) repeat an earlier timestamp (first {info['value']!r} on line "
        f"{info['line']}, e.g. a daylight-saving hour); kept in file order and scored as separate rows"
    )


def read_scores(path: str | Path) -> pd.DataFrame:
    """A score file written by ``vigil score``: timestamp, score, is_anomaly (+ optional symbol, threshold).

    Scores may be blank (a detector's warm-up) or infinite; ``is_anomaly`` must be 0/1 or true/false.
    """
    table = read_csv_table(path, required=["timestamp", "score", "is_anomaly"], text=["symbol"])
    out = pd.DataFrame(
        {
            "time": table.times("timestamp", "iso_or_epoch"),
            "score": table.numbers("score", blank_ok=True, finite=False),
            "is_anomaly": table.flags("is_anomaly"),
            "symbol": table.text("symbol").to_numpy() if table.has("symbol") else "",
        }
    )
    if table.has("threshold"):
        out["threshold"] = table.numbers("threshold", blank_ok=True, finite=False)
    return out


def read_labels(path: str | Path) -> pd.DataFrame:
    """Label windows: start, end (UTC), symbol ('' when absent), kind ('anomaly' when absent).

    A header with no rows is a valid file: no labelled windows.
    """
    table = read_csv_table(path, required=["start", "end"], text=["symbol", "kind"], allow_no_rows=True)
    if table.frame.empty:
        return pd.DataFrame({"start": [], "end": [], "symbol": [], "kind": []})
    out = pd.DataFrame(
        {
            "start": table.times("start", "iso_or_epoch"),
            "end": table.times("end", "iso_or_epoch"),
            "symbol": table.text("symbol").to_numpy() if table.has("symbol") else "",
            "kind": table.text("kind").to_numpy() if table.has("kind") else "anomaly",
        }
    )
    backwards = (out["end"] < out["start"]).to_numpy()
    if backwards.any():
        i = int(backwards.nonzero()[0][0])
        raise InputError(
            f"{table.path}:{table.line(i)}: end {table.raw_value(i, 'end')!r} is before start "
            f"{table.raw_value(i, 'start')!r}"
        )
    return out
