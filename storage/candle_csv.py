"""The candle CSV format: read strictly, write plainly.

Import format (what ``vigil import-candles`` reads, ``vigil export-candles``
and ``vigil synth`` write)::

    timestamp_ms,open,high,low,close,volume
    1700000000000,37000.1,37100.0,36950.2,37050.0,123.4

``timestamp`` (ISO-8601, UTC assumed when no offset is given) may stand in
for ``timestamp_ms``. Reading is all-or-nothing: the first malformed row
raises :class:`~core.errors.InputError` naming the file, the line and the
value, before anything is written anywhere. The file itself (encoding,
header, field counts) is judged by :mod:`core.csvfiles`, the reader every
user CSV goes through.

:func:`check_candles` is the softer, whole-file report (gaps, bars whose high
is below their close, ...) used to judge real data before trusting it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.csvfiles import read_csv_table
from core.errors import InputError
from storage.candles import CANDLE_COLUMNS

__all__ = ["CandleReport", "check_candles", "read_candle_csv", "write_candle_csv"]


def read_candle_csv(path: str | Path) -> pd.DataFrame:
    """Parse a candle CSV into a frame indexed by UTC open time.

    The file is read by :func:`core.csvfiles.read_csv_table` (encoding,
    header, ragged rows); this adds the candle rules. Raises ``InputError`` on
    a missing file or column, an unparsable, infinite or negative value, a bar
    whose high/low do not bound its open/close, or a duplicated timestamp.
    Line numbers count the header as line 1.
    """
    table = read_csv_table(path)
    if table.has("timestamp_ms"):
        time_col = "timestamp_ms"
        index = table.times(time_col, "epoch_ms")
    elif table.has("timestamp"):
        time_col = "timestamp"
        index = table.times(time_col, "iso")
    else:
        raise InputError(
            f"{table.path}:1: header needs 'timestamp_ms' or 'timestamp', got {','.join(table.frame.columns)!r}"
        )
    missing = [c for c in CANDLE_COLUMNS if not table.has(c)]
    if missing:
        raise InputError(f"{table.path}:1: header is missing column(s) {', '.join(missing)}")
    frame = pd.DataFrame({col: table.numbers(col) for col in CANDLE_COLUMNS}, index=index.rename("time"))

    checks = [
        ((frame[["open", "high", "low", "close"]] <= 0).any(axis=1), "low", "prices must be > 0"),
        (frame["volume"] < 0, "volume", "volume must be >= 0"),
        (frame["high"] < frame[["open", "close", "low"]].max(axis=1), "high", "high is below open, close or low"),
        (frame["low"] > frame[["open", "close"]].min(axis=1), "low", "low is above open or close"),
        (frame.index.duplicated(), time_col, "duplicate timestamp"),
    ]
    for mask, col, why in checks:
        table.fail_first(mask, col, why)
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
