"""The one strict reader of the CSV files users hand to vigil.

Candles (``vigil import-candles``), detector series, score and label files
(``vigil score`` / ``evaluate``) and backtest events all enter through
:func:`read_csv_table`, so a file is judged by one rule wherever it comes in,
and every refusal is one line naming the file (and line, column, value):

- text: UTF-8, a byte-order mark tolerated. A binary file (NUL bytes, UTF-16)
  or a Latin-1/cp1252 export is refused instead of being read as mojibake.
- header: names are stripped and lower-cased; an empty or duplicated name is
  refused (pandas would silently rename it ``a.1`` and a reader would pick the
  wrong one); required columns are named when missing.
- rows: a row with more or fewer fields than the header is refused naming its
  line (pandas pads short rows with blanks and, for a long first row, silently
  turns the first column into the index). Blank lines are skipped.
- values: :meth:`CsvTable.numbers`, :meth:`CsvTable.times` and
  :meth:`CsvTable.flags` parse a column, or raise naming file, line, column
  and the value as written.

Speed matters: candle files run to millions of rows. The file is parsed once
by pandas' C reader with column types inferred, so a clean 2.4 M-row candle
file costs little more than a bare ``pd.read_csv``. The byte-level scan that
maps a data row to its physical line (numpy over the raw bytes) runs only
when a row has to be named or a short row has to be told from a blank value.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = ["CsvTable", "TimeFormat", "read_csv_table"]

TimeFormat = Literal["epoch_ms", "iso", "iso_or_ms", "iso_or_epoch"]
"""What a time column may hold: epoch milliseconds only, ISO-8601 only, either,
or ISO-8601 / epoch seconds / epoch milliseconds (unit told apart by magnitude)."""

_TIME_WHY = {
    "epoch_ms": "expected epoch milliseconds",
    "iso": "expected an ISO-8601 time",
    "iso_or_ms": "expected an ISO-8601 time or epoch milliseconds",
    "iso_or_epoch": "expected an ISO-8601 time or epoch seconds/ms",
}
_MS_FLOOR = 10**11  # 1973-03-03 in ms; 5138 AD in seconds: smaller epoch numbers are seconds
# The latest time a nanosecond timestamp (pandas, and int64 milliseconds in the database) can hold, kept a
# day short of pandas' own limit (2262-04-11T23:47:16) so nothing near it wraps or overflows.
_LAST_MS = int(pd.Timestamp("2262-04-11", tz="UTC").value // 10**6)
_OUT_OF_RANGE = "out of range: times must be from 1970-01-01 to before 2262-04-11 (what the database can hold)"
_WHITESPACE = np.array([ord(" "), ord("\t"), ord("\r")], dtype=np.uint8)


@dataclass(frozen=True)
class _Scan:
    """Every non-blank record of the file (header first): physical line and field count."""

    lines: np.ndarray
    fields: np.ndarray
    starts: np.ndarray | None  # byte spans, when the file has no quotes (else fields are re-read with csv)
    ends: np.ndarray | None


@dataclass(frozen=True)
class CsvTable:
    """A CSV file read strictly: ``frame`` has one column per header name (stripped, lower-case).

    Column types are inferred by pandas (a column holding only numbers is
    numeric), except the ``text`` columns asked for, which stay strings. No
    value is NaN: blanks stay ``""`` until a parse method decides about them.
    Row ``i`` of ``frame`` is data row ``i`` of the file.
    """

    path: Path
    frame: pd.DataFrame
    data: bytes = field(repr=False)  # the raw text (BOM stripped), kept only to name lines in errors

    def has(self, column: str) -> bool:
        return column in self.frame.columns

    # -- naming a row ---------------------------------------------------------------------------------------
    def _scan(self) -> _Scan:
        scan = _scan_any(self.data, self.path)
        if len(scan.lines) != len(self.frame) + 1 and scan.starts is not None:  # pandas saw other records
            scan = _scan_with_csv(self.data, self.path)
        return scan

    def line(self, row: int) -> int:
        """The physical line (1-based, header included) of data row ``row``."""
        return int(self._scan().lines[row + 1])

    def lines(self) -> np.ndarray:
        """The physical line (1-based, header included) of every data row, in row order."""
        return self._scan().lines[1:].astype(np.int64)

    def raw_value(self, row: int, column: str, scan: _Scan | None = None) -> str:
        """The value of ``column`` in data row ``row`` as written in the file (stripped)."""
        scan = scan or self._scan()
        pos = self.frame.columns.get_loc(column)
        if scan.starts is not None and scan.ends is not None:
            text = self.data[scan.starts[row + 1] : scan.ends[row + 1]].decode("utf-8")
            parts = text.rstrip("\r").split(",")
        else:
            parts = _csv_record(self.data, int(scan.lines[row + 1]), self.path)
        return parts[pos].strip() if pos < len(parts) else ""

    def error(self, row: int, column: str, why: str) -> InputError:
        """``file:line: column 'c': why, got 'value'``: the one shape of a bad-value error."""
        scan = self._scan()
        value = self.raw_value(row, column, scan)
        return InputError(f"{self.path}:{int(scan.lines[row + 1])}: column {column!r}: {why}, got {value!r}")

    def fail_first(self, bad: np.ndarray | pd.Series, column: str, why: str) -> None:
        """Raise :meth:`error` for the first row where ``bad`` is true; do nothing when none is."""
        mask = np.asarray(bad, dtype=bool)
        if mask.any():
            raise self.error(int(np.flatnonzero(mask)[0]), column, why)

    # -- parsing a column -----------------------------------------------------------------------------------
    def text(self, column: str) -> pd.Series:
        """A column as stripped strings.

        Stripped once per distinct value: text columns (symbol, detector,
        severity) repeat a few values over millions of rows.
        """
        codes, uniques = pd.factorize(self.frame[column].astype(str).to_numpy(dtype=object))
        stripped = np.array([u.strip() for u in uniques] or [""], dtype=object)
        return pd.Series(stripped[codes], index=self.frame.index, dtype=object)

    def numbers(self, column: str, *, blank_ok: bool = False, finite: bool = True) -> np.ndarray:
        """A column as float64.

        ``blank_ok`` lets an empty cell or ``nan`` stand for a missing value
        (NaN); ``finite=False`` lets ``inf``/``-inf`` through (scores may be
        infinite, prices may not).
        """
        values = self.frame[column]
        if pd.api.types.is_bool_dtype(values):
            self.fail_first(np.ones(len(values), dtype=bool), column, "expected a number")
        if pd.api.types.is_numeric_dtype(values):
            out = values.to_numpy(dtype="float64")
        else:
            text = self.text(column)
            out = pd.to_numeric(text.to_numpy(dtype=object), errors="coerce").astype("float64")
            bad = np.isnan(out)
            if blank_ok:
                bad &= ~text.str.lower().isin(["", "nan"]).to_numpy()
            self.fail_first(bad, column, "expected a number")
        if finite:
            self.fail_first(np.isinf(out), column, "expected a finite number")
        return out

    def flags(self, column: str) -> np.ndarray:
        """A 0/1 (or true/false) column as bools."""
        values = self.frame[column]
        if pd.api.types.is_bool_dtype(values):
            return values.to_numpy(dtype=bool)
        text = self.text(column).str.lower()
        self.fail_first(~text.isin(["0", "1", "true", "false"]).to_numpy(), column, "expected 0/1 or true/false")
        return text.isin(["1", "true"]).to_numpy()

    def times(self, column: str, accept: TimeFormat) -> pd.DatetimeIndex:
        """A time column as a UTC ``DatetimeIndex`` (ns); ISO times without an offset are taken as UTC.

        Epoch numbers must be whole milliseconds (``>= 1e11``: smaller ones
        look like seconds and are refused), except under ``iso_or_epoch``,
        where a column whose largest value is below 1e11 is read as (possibly
        fractional) seconds. A column mixing the two is refused, naming the
        first value that disagrees with the rest.
        """
        values = self.frame[column]
        why = _TIME_WHY[accept]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if accept == "epoch_ms" and not numeric:
            num = pd.to_numeric(self.text(column).to_numpy(dtype=object), errors="coerce").astype("float64")
            self.fail_first(np.isnan(num), column, why)
            return self._epoch(num, column, "ms", why)
        if not numeric and accept != "iso":  # digits pandas could not hold in an int64 (1e20): still numbers
            text = self.text(column).to_numpy(dtype=object)
            as_numbers = pd.to_numeric(text, errors="coerce").astype("float64")
            if len(as_numbers) and not np.isnan(as_numbers).any():
                values, numeric = pd.Series(as_numbers), True
        if numeric:
            self.fail_first(np.full(len(values), accept == "iso"), column, why)
            num = values.to_numpy(dtype="float64")
            seconds = accept == "iso_or_epoch" and not column.endswith("_ms") and bool(np.nanmax(num) < _MS_FLOOR)
            return self._epoch(num, column, "s" if seconds else "ms", why)
        parsed = pd.DatetimeIndex(pd.to_datetime(self.text(column), utc=True, errors="coerce", format="ISO8601"))
        self.fail_first(parsed.isna(), column, why)
        # pandas may parse into microseconds, which reach far past what nanoseconds (and the database) hold
        us = parsed.as_unit("us").asi8
        self.fail_first((us >= _LAST_MS * 1000) | (us < 0), column, _OUT_OF_RANGE)
        return parsed.as_unit("ns")

    def _epoch(self, num: np.ndarray, column: str, unit: str, why: str) -> pd.DatetimeIndex:
        self.fail_first(~np.isfinite(num) | (num < 0), column, why)
        ms = num if unit == "ms" else num * 1000.0
        self.fail_first(ms >= _LAST_MS, column, _OUT_OF_RANGE)  # checked before any cast to int64 can wrap
        if unit == "ms":
            self.fail_first(num % 1 != 0, column, "expected whole epoch milliseconds")
            self.fail_first(num < _MS_FLOOR, column, "looks like seconds, expected milliseconds")
            return pd.DatetimeIndex(pd.to_datetime(num.astype("int64"), unit="ms", utc=True)).as_unit("ns")
        return pd.DatetimeIndex(pd.to_datetime(num, unit="s", utc=True)).as_unit("ns")


def read_csv_table(
    path: str | Path,
    *,
    required: Sequence[str] = (),
    text: Sequence[str] = (),
    allow_no_rows: bool = False,
) -> CsvTable:
    """Read a user's CSV file strictly (see the module docstring for the rules).

    ``required`` columns must be in the header; ``text`` columns are kept as
    strings (``"007"`` stays ``"007"``); a header with no data rows is refused
    unless ``allow_no_rows``. Raises :class:`~core.errors.InputError`.
    """
    p = Path(path)
    data = _read_text(p)
    names = _header(p, data)
    missing = [c for c in required if c not in names]
    if missing:
        raise InputError(f"{p}:1: header is missing column(s) {', '.join(missing)} (it has {','.join(names)})")
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            header=0,
            names=names,
            dtype={c: str for c in text if c in names},
            keep_default_na=False,  # blanks stay "", "NA" stays "NA": the parse methods decide
            skipinitialspace=True,
        )
    except pd.errors.ParserError as err:
        table = CsvTable(p, pd.DataFrame(columns=names), data)
        _check_ragged(table, len(names), _scan_any(data, p))
        raise InputError(f"{p}: not a valid CSV: {str(err).strip()}") from None
    table = CsvTable(p, frame, data)
    if frame.empty:
        if not allow_no_rows:
            raise InputError(f"{p}: no data rows")
        return table
    if _may_be_ragged(frame, data, len(names)):
        _check_ragged(table, len(names), table._scan())
    return table


def _read_text(p: Path) -> bytes:
    """The file's bytes, checked to be UTF-8 text, without a byte-order mark."""
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{p}: is a directory, expected a CSV file") from None
    except OSError as err:
        raise InputError(f"{p}: cannot read: {err.strerror or err}") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{p}: is UTF-16 text, expected UTF-8; save the file as UTF-8 CSV")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{p}:{line}: binary data (a NUL byte), expected UTF-8 CSV text")
    if not data.isascii():  # ASCII is UTF-8; only files with other bytes pay for a full decode
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as err:
            line = data.count(b"\n", 0, err.start) + 1
            raise InputError(
                f"{p}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x}; Latin-1 or cp1252?), save the file as UTF-8"
            ) from None
    if not data.strip():
        raise InputError(f"{p}: file is empty")
    return data


def _header(p: Path, data: bytes) -> list[str]:
    """Header names, stripped and lower-cased; empty or duplicated names refused."""
    end = data.find(b"\n", 65536)
    head = (data if end < 0 else data[:end]).decode("utf-8", errors="replace")
    try:
        header = next((row for row in csv.reader(io.StringIO(head), skipinitialspace=True) if not _blank(row)), [])
    except csv.Error as err:
        raise InputError(f"{p}:1: not a valid CSV header ({err})") from None
    names = [c.strip().lower() for c in header]
    empty = [str(i + 1) for i, c in enumerate(names) if not c]
    if empty:
        raise InputError(f"{p}:1: header column(s) {', '.join(empty)} have no name, in {','.join(names)!r}")
    dup = sorted({c for c in names if names.count(c) > 1})
    if dup:
        raise InputError(f"{p}:1: header has column(s) {', '.join(dup)} more than once (names are compared lower-case)")
    return names


def _may_be_ragged(frame: pd.DataFrame, data: bytes, width: int) -> bool:
    """Cheap signs that a row has a field count other than the header's.

    A short row leaves ``""`` in the last column (so that column is text and
    has a blank); a long *first* row is the one case pandas accepts silently
    (it makes the first column the index), so it is counted directly.
    """
    last = frame.iloc[:, -1]
    if not pd.api.types.is_numeric_dtype(last) and (last.astype(str) == "").any():
        return True
    end = data.find(b"\n", 65536)
    head = (data if end < 0 else data[:end]).decode("utf-8", errors="replace")
    try:
        records = [row for row in csv.reader(io.StringIO(head), skipinitialspace=True) if not _blank(row)]
    except csv.Error:
        return True  # let the full scan name the record
    return len(records) > 1 and len(records[1]) != width


def _check_ragged(table: CsvTable, width: int, scan: _Scan) -> None:
    bad = np.flatnonzero(scan.fields != width)
    if len(bad):
        i = int(bad[0])
        raise InputError(
            f"{table.path}:{int(scan.lines[i])}: row has {int(scan.fields[i])} fields, the header has {width}"
        )


def _scan_any(data: bytes, path: Path) -> _Scan:
    """The numpy scan for plain files; the csv module's for quoted fields or bare-CR line ends."""
    if b'"' in data or data.count(b"\r") != data.count(b"\r\n"):
        return _scan_with_csv(data, path)
    return _scan(data)


def _scan(data: bytes) -> _Scan:
    """Lines and field counts of a file without quotes, vectorised over its bytes."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == ord("\n"))
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(buf)]))
    commas = np.flatnonzero(buf == ord(","))
    fields = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
    spaces = np.flatnonzero(np.isin(buf, _WHITESPACE))  # few: blank lines are those made only of these
    blank = (np.searchsorted(spaces, ends) - np.searchsorted(spaces, starts)) == ends - starts
    keep = ~blank
    lines = np.arange(1, len(starts) + 1)
    return _Scan(lines[keep], fields[keep], starts[keep], ends[keep])


def _records(data: bytes, path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(first physical line, fields)`` of every record, by the csv module; a malformed record is an InputError."""
    reader = csv.reader(io.StringIO(data.decode("utf-8"), newline=""), skipinitialspace=True)
    previous = 0
    try:
        for row in reader:
            yield previous + 1, row
            previous = reader.line_num
    except csv.Error as err:  # a bare CR inside a field, a field past the csv module's size limit
        raise InputError(f"{path}:{reader.line_num}: not a valid CSV record ({err})") from None


def _scan_with_csv(data: bytes, path: Path) -> _Scan:
    """Lines and field counts by the csv module: for quoted fields (which may hold commas or newlines).

    A Python loop over records, so it only runs to name a row, never on a
    clean file's way in.
    """
    lines: list[int] = []
    fields: list[int] = []
    for line, row in _records(data, path):
        if not _blank(row):
            lines.append(line)
            fields.append(len(row))
    return _Scan(np.array(lines), np.array(fields), None, None)


def _blank(row: list[str]) -> bool:
    """A blank line as the csv module returns it (pandas skips these)."""
    return not row or (len(row) == 1 and not row[0].strip())


def _csv_record(data: bytes, line: int, path: Path) -> list[str]:
    """The fields of the record starting on physical ``line`` (quoted files; error path only)."""
    for first, row in _records(data, path):
        if first == line:
            return row
    return []
