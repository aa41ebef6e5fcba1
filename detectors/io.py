"""Reading the files the detector commands take: series CSVs, score CSVs, label CSVs.

Series: a ``timestamp`` column (ISO-8601, epoch seconds or epoch milliseconds) or
``timestamp_ms``, plus numeric columns (a candle CSV in the import format works, and
so does a lone ``value`` column). Labels: ``start,end`` (ISO or epoch ms), optional
``symbol,kind``. Errors name the file, line and value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bot.errors import InputError

__all__ = ["parse_times", "read_labels", "read_scores", "read_series_csv", "repeated_timestamps_note"]


def _read(path: Path) -> pd.DataFrame:
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{path}: not a valid CSV: {err}") from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    if raw.empty:
        raise InputError(f"{path}: no data rows")
    return raw


def parse_times(values: pd.Series, *, path: Path, column: str) -> pd.DatetimeIndex:
    """ISO-8601 strings, or epoch seconds / milliseconds (told apart by magnitude), as UTC."""
    lines = np.arange(len(values)) + 2
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().all():
        unit = "ms" if column.endswith("_ms") or float(num.abs().max()) >= 1e11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(num.astype("float64"), unit=unit, utc=True)).as_unit("ns")
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().any():
        i = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise InputError(
            f"{path}:{lines[i]}: column {column!r}: expected an ISO-8601 time or epoch seconds/ms, "
            f"got {values.iat[i]!r}"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns")


def _time_column(raw: pd.DataFrame, path: Path) -> str:
    for col in ("timestamp", "timestamp_ms", "time", "date"):
        if col in raw.columns:
            return col
    raise InputError(f"{path}:1: header needs a 'timestamp' or 'timestamp_ms' column, got {','.join(raw.columns)!r}")


def read_series_csv(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A numeric frame indexed by UTC time, sorted; every non-time column must be numeric.

    Repeated timestamps (a daylight-saving hour written twice in local time) are kept, in
    file order; ``frame.attrs["repeated_timestamps"]`` says how many and where the first is.
    """
    p = Path(path)
    raw = _read(p)
    tcol = _time_column(raw, p)
    index = parse_times(raw[tcol], path=p, column=tcol)
    wanted = columns or [c for c in raw.columns if c not in {tcol, "symbol"}]
    missing = [c for c in wanted if c not in raw.columns]
    if missing:
        raise InputError(f"{p}:1: column(s) {', '.join(missing)} not in the header ({','.join(raw.columns)})")
    if not wanted:
        raise InputError(f"{p}:1: no value columns besides {tcol!r}")
    data = {}
    for col in wanted:
        text = raw[col].str.strip()
        num = pd.to_numeric(text.replace({"": "nan"}), errors="coerce")
        bad = num.isna() & ~text.str.lower().isin(["", "nan"])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise InputError(f"{p}:{i + 2}: column {col!r}: expected a number, got {raw[col].iat[i]!r}")
        data[col] = num.to_numpy(dtype="float64")
    frame = pd.DataFrame(data, index=index.rename("time"))
    repeated = frame.index.duplicated()
    if repeated.any():
        # A daylight-saving change repeats an hour: keep every row, in file order.
        i = int(np.flatnonzero(repeated)[0])
        frame.attrs["repeated_timestamps"] = {"rows": int(repeated.sum()), "line": i + 2, "value": raw[tcol].iat[i]}
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
    """A score file written by ``vigil score``: timestamp, score, is_anomaly (+ optional symbol, threshold)."""
    p = Path(path)
    raw = _read(p)
    for col in ("timestamp", "score", "is_anomaly"):
        if col not in raw.columns:
            raise InputError(f"{p}:1: header is missing column {col!r} (has {','.join(raw.columns)})")
    out = pd.DataFrame(
        {
            "time": parse_times(raw["timestamp"], path=p, column="timestamp"),
            "score": pd.to_numeric(raw["score"].replace({"": "nan"}), errors="coerce"),
            "is_anomaly": pd.to_numeric(raw["is_anomaly"], errors="coerce").fillna(0).astype(bool),
            "symbol": raw["symbol"] if "symbol" in raw.columns else "",
        }
    )
    if "threshold" in raw.columns:
        out["threshold"] = pd.to_numeric(raw["threshold"].replace({"": "nan"}), errors="coerce")
    return out


def read_labels(path: str | Path) -> pd.DataFrame:
    """Label windows: start, end (UTC), symbol ('' when absent), kind ('anomaly' when absent)."""
    p = Path(path)
    try:
        raw = _read(p)
    except InputError as err:
        if "no data rows" in str(err):
            return pd.DataFrame({"start": [], "end": [], "symbol": [], "kind": []})
        raise
    for col in ("start", "end"):
        if col not in raw.columns:
            raise InputError(f"{p}:1: header is missing column {col!r} (has {','.join(raw.columns)})")
    out = pd.DataFrame(
        {
            "start": parse_times(raw["start"], path=p, column="start"),
            "end": parse_times(raw["end"], path=p, column="end"),
            "symbol": raw["symbol"] if "symbol" in raw.columns else "",
            "kind": raw["kind"] if "kind" in raw.columns else "anomaly",
        }
    )
    bad = out["end"] < out["start"]
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise InputError(f"{p}:{i + 2}: end {raw['end'].iat[i]!r} is before start {raw['start'].iat[i]!r}")
    return out
