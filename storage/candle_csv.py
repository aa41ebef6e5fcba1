"""The candle CSV format: read strictly, write plainly.

Import format (what ``vigil import-candles`` reads, ``vigil export-candles``
and ``vigil synth`` write)::

    timestamp_ms,open,high,low,close,volume
    1700000000000,37000.1,37100.0,36950.2,37050.0,123.4

``timestamp`` (ISO-8601, UTC assumed when no offset is given) may stand in
for ``timestamp_ms``. Reading is all-or-nothing: the first malformed row
raises :class:`~core.errors.InputError` naming the file, the line and the
value, before anything is written anywhere.

:func:`check_candles` is the softer, whole-file report (gaps, bars whose high
is below their close, ...) used to judge real data before trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.errors import InputError
from storage.candles import CANDLE_COLUMNS

__all__ = ["CandleReport", "check_candles", "read_candle_csv", "write_candle_csv"]


def _bad_line(path: Path, line: int, column: str, value: object, why: str) -> InputError:
    return InputError(f"{path}:{line}: column {column!r}: {why}, got {value!r}")


def read_candle_csv(path: str | Path) -> pd.DataFrame:
    """Parse a candle CSV into a frame indexed by UTC open time.

    Raises ``InputError`` on a missing file or column, an unparsable or
    negative value, a bar whose high/low do not bound its open/close, or a
    duplicated timestamp. Line numbers count the header as line 1.
    """
    p = Path(path)
    try:
        raw = pd.read_csv(p, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{p}: file is empty") from None
    except pd.errors.ParserError as err:
        raise InputError(f"{p}: not a valid CSV: {err}") from None
    raw.columns = [c.strip().lower() for c in raw.columns]
    if "timestamp_ms" in raw.columns:
        time_col = "timestamp_ms"
    elif "timestamp" in raw.columns:
        time_col = "timestamp"
    else:
        raise InputError(f"{p}:1: header needs 'timestamp_ms' or 'timestamp', got {','.join(raw.columns)!r}")
    missing = [c for c in CANDLE_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(f"{p}:1: header is missing column(s) {', '.join(missing)}")
    if raw.empty:
        raise InputError(f"{p}: no data rows")

    lines = np.arange(len(raw)) + 2  # header is line 1
    if time_col == "timestamp_ms":
        ts = pd.to_numeric(raw[time_col], errors="coerce")
        bad = ts.isna() | (ts % 1 != 0) | (ts < 0)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise _bad_line(p, lines[i], time_col, raw[time_col].iat[i], "expected epoch milliseconds")
        if (ts < 10**11).any():  # before 1973 in ms: almost surely seconds
            i = int(np.flatnonzero((ts < 10**11).to_numpy())[0])
            raise _bad_line(p, lines[i], time_col, raw[time_col].iat[i], "looks like seconds, expected milliseconds")
        index = pd.to_datetime(ts.astype("int64"), unit="ms", utc=True)
    else:
        index = pd.to_datetime(raw[time_col], utc=True, errors="coerce", format="ISO8601")
        if index.isna().any():
            i = int(np.flatnonzero(index.isna().to_numpy())[0])
            raise _bad_line(p, lines[i], time_col, raw[time_col].iat[i], "expected an ISO-8601 time")

    values = {}
    for col in CANDLE_COLUMNS:
        num = pd.to_numeric(raw[col], errors="coerce")
        bad = num.isna() | ~np.isfinite(num)
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise _bad_line(p, lines[i], col, raw[col].iat[i], "expected a number")
        values[col] = num.to_numpy(dtype="float64")
    frame = pd.DataFrame(values, index=pd.DatetimeIndex(index, name="time").as_unit("ns"))

    checks = [
        ((frame[["open", "high", "low", "close"]] <= 0).any(axis=1), "low", "prices must be > 0"),
        (frame["volume"] < 0, "volume", "volume must be >= 0"),
        (frame["high"] < frame[["open", "close", "low"]].max(axis=1), "high", "high is below open, close or low"),
        (frame["low"] > frame[["open", "close"]].min(axis=1), "low", "low is above open or close"),
    ]
    for mask, col, why in checks:
        if mask.any():
            i = int(np.flatnonzero(mask.to_numpy())[0])
            raise _bad_line(p, lines[i], col, raw[col].iat[i], why)
    dup = frame.index.duplicated()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _bad_line(p, lines[i], time_col, raw[time_col].iat[i], "duplicate timestamp")
    return frame.sort_index()


def write_candle_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """Write a UTC-indexed candle frame in the import format."""
    out = pd.DataFrame(
        {"timestamp_ms": frame.index.as_unit("ms").asi8, **{c: frame[c].to_numpy() for c in CANDLE_COLUMNS}}
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, float_format="%.10g")


@dataclass(frozen=True)
class CandleReport:
    """What a candle series looks like before it is trusted."""

    rows: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    step_ms: int | None
    gaps: int
    missing_bars: int
    max_gap_bars: int
    misaligned: int
    stale_runs: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def check_candles(frame: pd.DataFrame, timeframe_ms: int | None = None, *, stale_run: int = 5) -> CandleReport:
    """Report gaps, misaligned timestamps and stale runs in a candle frame.

    Gaps and stale runs are facts about real exchange data, not errors: they
    are counted, and listed in ``problems`` only when they are so large that
    detectors fed this series would mostly see holes.
    """
    n = len(frame)
    if n == 0:
        return CandleReport(0, None, None, timeframe_ms, 0, 0, 0, 0, 0, ("no rows",))
    ts = frame.index.as_unit("ms").asi8
    diffs = np.diff(ts)
    step = timeframe_ms or (int(np.median(diffs)) if len(diffs) else None)
    problems: list[str] = []
    gaps = missing = max_gap = misaligned = stale = 0
    if step:
        gap_mask = diffs > step
        gaps = int(gap_mask.sum())
        missing = int(((diffs[gap_mask] // step) - 1).sum()) if gaps else 0
        max_gap = int((diffs.max() // step) - 1) if len(diffs) else 0
        misaligned = int((ts % step != 0).sum())
        if misaligned:
            problems.append(f"{misaligned} timestamps are not aligned to the {step} ms bar grid")
        if missing > 0.05 * n:
            problems.append(f"{missing} missing bars ({missing / n:.1%} of {n})")
    if (diffs <= 0).any():
        problems.append("timestamps are not strictly increasing")
    same = (frame[list(CANDLE_COLUMNS[:4])].diff().abs().sum(axis=1) == 0).to_numpy()
    run = 0
    for flag in same:  # runs are rare; this loop is off the hot path (reports only)
        run = run + 1 if flag else 0
        if run == stale_run:
            stale += 1
    return CandleReport(
        rows=n,
        first=frame.index[0],
        last=frame.index[-1],
        step_ms=step,
        gaps=gaps,
        missing_bars=missing,
        max_gap_bars=max_gap,
        misaligned=misaligned,
        stale_runs=stale,
        problems=tuple(problems),
    )
