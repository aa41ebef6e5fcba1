"""The one strict CSV reader: encoding, header, field counts, values; and that every user-CSV reader uses it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import core.csvfiles
from backtest.events import read_events_csv
from core.csvfiles import read_csv_table
from core.errors import InputError
from detectors.io import read_labels, read_scores, read_series_csv
from detectors.pump.dataset import read_pump_events
from detectors.pump.features import LA_MORGIA_COLUMNS, read_feature_file
from feeds.replay import _read_social
from feeds.synthetic_io import read_labels as read_synthetic_labels
from storage.candle_csv import read_candle_csv


def _file(tmp_path: Path, content: str | bytes, name: str = "f.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def _error(fn: Callable[[], object]) -> str:
    with pytest.raises(InputError) as info:
        fn()
    message = str(info.value)
    assert "\n" not in message  # one line, for the CLI and the bot alike
    return message


# -- encoding -------------------------------------------------------------------------------------------------


def test_read_csv_table_refuses_latin1_naming_file_line_and_byte(tmp_path: Path) -> None:
    path = _file(tmp_path, "symbol,value\nBTC,1\ncafé,2\n".encode("latin-1"))
    message = _error(lambda: read_csv_table(path))
    assert message.startswith(f"{path}:3: not UTF-8 text (byte 0xe9")


def test_read_csv_table_refuses_binary_file(tmp_path: Path) -> None:
    path = _file(tmp_path, b"PK\x03\x04\x14\x00\x00\x00\x08\x00zipped\n")
    assert _error(lambda: read_csv_table(path)) == f"{path}:1: binary data (a NUL byte), expected UTF-8 CSV text"


def test_read_csv_table_refuses_utf16_saying_so(tmp_path: Path) -> None:
    path = _file(tmp_path, "a,b\n1,2\n".encode("utf-16"))
    assert "is UTF-16 text, expected UTF-8" in _error(lambda: read_csv_table(path))


def test_read_csv_table_tolerates_a_bom_and_utf8_text(tmp_path: Path) -> None:
    path = _file(tmp_path, "\ufefftimestamp,value,note\n2024-01-01T00:00:00Z,1.5,café\n".encode())
    table = read_csv_table(path, required=["timestamp"], text=["note"])
    assert list(table.frame.columns) == ["timestamp", "value", "note"]
    assert table.text("note").tolist() == ["café"]


# -- header ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["time,open,open", "time,Open,open ", "close,time,CLOSE"])
def test_read_csv_table_refuses_duplicate_columns_naming_them(tmp_path: Path, header: str) -> None:
    path = _file(tmp_path, f"{header}\n1,2,3\n")
    message = _error(lambda: read_csv_table(path))
    assert message.startswith(f"{path}:1: header has column(s) ")
    assert ("open" in message) != ("close" in message)


def test_read_csv_table_refuses_unnamed_columns(tmp_path: Path) -> None:
    path = _file(tmp_path, ",open,close\n0,1,2\n")  # a pandas index written without a name
    assert "header column(s) 1 have no name" in _error(lambda: read_csv_table(path))


def test_read_csv_table_names_every_missing_required_column(tmp_path: Path) -> None:
    path = _file(tmp_path, "timestamp,open\n1,2\n")
    message = _error(lambda: read_csv_table(path, required=["timestamp", "score", "is_anomaly"]))
    assert message == f"{path}:1: header is missing column(s) score, is_anomaly (it has timestamp,open)"


def test_read_csv_table_strips_and_lowercases_header_names(tmp_path: Path) -> None:
    path = _file(tmp_path, " Timestamp , VALUE\n1,2\n")
    assert list(read_csv_table(path).frame.columns) == ["timestamp", "value"]


# -- empty files ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["", "\n\n", "  \r\n"])
def test_read_csv_table_refuses_empty_file(tmp_path: Path, content: str) -> None:
    path = _file(tmp_path, content)
    assert _error(lambda: read_csv_table(path)) == f"{path}: file is empty"


def test_read_csv_table_header_without_rows_is_refused_unless_allowed(tmp_path: Path) -> None:
    path = _file(tmp_path, "start,end\n")
    assert _error(lambda: read_csv_table(path)) == f"{path}: no data rows"
    assert read_csv_table(path, allow_no_rows=True).frame.empty


def test_read_csv_table_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert _error(lambda: read_csv_table(path)) == f"{path}: no such file"


# -- ragged rows ----------------------------------------------------------------------------------------------


def test_read_csv_table_refuses_short_row_naming_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "a,b,c\n1,2,3\n4,5\n6,7,8\n")
    assert _error(lambda: read_csv_table(path)) == f"{path}:3: row has 2 fields, the header has 3"


def test_read_csv_table_refuses_long_row_naming_line(tmp_path: Path) -> None:
    path = _file(tmp_path, "a,b,c\n1,2,3\n4,5,6,7\n")
    assert _error(lambda: read_csv_table(path)) == f"{path}:3: row has 4 fields, the header has 3"


def test_read_csv_table_refuses_long_first_row_that_pandas_would_take_as_index(tmp_path: Path) -> None:
    path = _file(tmp_path, "a,b,c\n1,2,3,\n4,5,6,\n")  # trailing commas: pandas makes column a the index
    assert _error(lambda: read_csv_table(path)) == f"{path}:2: row has 4 fields, the header has 3"


def test_read_csv_table_accepts_a_blank_last_value(tmp_path: Path) -> None:
    path = _file(tmp_path, "a,b,c\n1,2,3\n4,5,\n")
    assert read_csv_table(path).frame["c"].tolist() == ["3", ""]


def test_read_csv_table_counts_physical_lines_past_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    plain = _file(tmp_path, "a,b\n\n1,2\n\r\n3\n", "plain.csv")
    assert _error(lambda: read_csv_table(plain)) == f"{plain}:5: row has 1 fields, the header has 2"
    quoted = _file(tmp_path, 'note,b\n"two\nlines",1\n"x, y",oops\n', "quoted.csv")
    table = read_csv_table(quoted, text=["note"])
    assert table.text("note").tolist() == ["two\nlines", "x, y"]
    assert _error(lambda: table.numbers("b")) == f"{quoted}:4: column 'b': expected a number, got 'oops'"


def test_read_csv_table_names_the_line_of_a_late_error_in_a_large_file(tmp_path: Path) -> None:
    rows = 200_000
    body = "\n".join(f"{i},{i * 0.5}" for i in range(rows))
    path = _file(tmp_path, f"n,value\n{body}\n\n{rows},x\n")  # a blank line, then a bad last row
    table = read_csv_table(path)
    assert _error(lambda: table.numbers("value")) == f"{path}:{rows + 3}: column 'value': expected a number, got 'x'"


# -- values ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "why"),
    [
        ("abc", "expected a number"),
        ("1_000", "expected a number"),
        ("", "expected a number"),
        ("nan", "expected a number"),
        ("inf", "expected a finite number"),
    ],
)
def test_numbers_names_file_line_column_and_value(tmp_path: Path, cell: str, why: str) -> None:
    path = _file(tmp_path, f"t,price\n1,10.5\n2,{cell}\n")
    message = _error(lambda: read_csv_table(path).numbers("price"))
    assert message == f"{path}:3: column 'price': {why}, got {cell!r}"


def test_numbers_blank_ok_reads_blank_and_nan_as_missing(tmp_path: Path) -> None:
    path = _file(tmp_path, "t,score\n1,\n2,NaN\n3,-inf\n4,2.5\n")
    out = read_csv_table(path).numbers("score", blank_ok=True, finite=False)
    assert np.isnan(out[:2]).all() and out[2] == -np.inf and out[3] == 2.5


def test_times_epoch_ms_refuses_seconds_and_fractions(tmp_path: Path) -> None:
    secs = _file(tmp_path, "timestamp_ms,v\n1704067200000,1\n1704070800,2\n", "s.csv")
    assert _error(lambda: read_csv_table(secs).times("timestamp_ms", "epoch_ms")) == (
        f"{secs}:3: column 'timestamp_ms': looks like seconds, expected milliseconds, got '1704070800'"
    )
    frac = _file(tmp_path, "timestamp_ms,v\n1704067200000.5,1\n", "f.csv")
    assert "expected whole epoch milliseconds" in _error(lambda: read_csv_table(frac).times("timestamp_ms", "epoch_ms"))


def test_times_iso_or_epoch_tells_seconds_from_milliseconds(tmp_path: Path) -> None:
    secs = _file(tmp_path, "timestamp,v\n1704067200,1\n1704070800.5,2\n", "s.csv")
    ms = _file(tmp_path, "timestamp,v\n1704067200000,1\n", "ms.csv")
    iso = _file(tmp_path, "timestamp,v\n2024-01-01 02:00:00+02:00,1\n", "iso.csv")
    first = pd.Timestamp("2024-01-01", tz="UTC")
    assert read_csv_table(secs).times("timestamp", "iso_or_epoch")[0] == first
    assert read_csv_table(ms).times("timestamp", "iso_or_epoch")[0] == first
    assert read_csv_table(iso).times("timestamp", "iso_or_epoch")[0] == first


def test_times_refuse_a_column_mixing_iso_and_epoch(tmp_path: Path) -> None:
    path = _file(tmp_path, "timestamp,v\n2024-01-01T00:00:00Z,1\n1704070800000,2\n")
    assert _error(lambda: read_csv_table(path).times("timestamp", "iso_or_ms")) == (
        f"{path}:3: column 'timestamp': expected an ISO-8601 time or epoch milliseconds, got '1704070800000'"
    )


def test_times_iso_refuses_numbers(tmp_path: Path) -> None:
    path = _file(tmp_path, "timestamp,v\n1704067200000,1\n")
    assert "expected an ISO-8601 time, got '1704067200000'" in _error(
        lambda: read_csv_table(path).times("timestamp", "iso")
    )


def test_flags_accept_01_and_true_false_only(tmp_path: Path) -> None:
    good = _file(tmp_path, "t,is_anomaly,b\n1,1,true\n2,0,False\n", "good.csv")
    table = read_csv_table(good)
    assert table.flags("is_anomaly").tolist() == [True, False] and table.flags("b").tolist() == [True, False]
    bad = _file(tmp_path, "t,is_anomaly\n1,1\n2,yes\n", "bad.csv")
    assert _error(lambda: read_csv_table(bad).flags("is_anomaly")) == (
        f"{bad}:3: column 'is_anomaly': expected 0/1 or true/false, got 'yes'"
    )


def test_text_columns_keep_what_was_written(tmp_path: Path) -> None:
    path = _file(tmp_path, "symbol,v\n007, 1\n 1e3 ,2\n")
    assert read_csv_table(path, text=["symbol"]).text("symbol").tolist() == ["007", "1e3"]


# -- every reader of user CSVs goes through it ----------------------------------------------------------------

_READERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "read_candle_csv": (read_candle_csv, "timestamp_ms,open,high,low,close,volume\n1704067200000,1,2,0.5,1.5,3\n"),
    "read_series_csv": (read_series_csv, "timestamp,value\n2024-01-01T00:00:00Z,1\n"),
    "read_scores": (read_scores, "timestamp,score,is_anomaly\n2024-01-01T00:00:00Z,0.5,0\n"),
    "read_labels": (read_labels, "start,end\n2024-01-01T00:00:00Z,2024-01-01T01:00:00Z\n"),
    "read_events_csv": (read_events_csv, "timestamp,score\n2024-01-01T00:00:00Z,1\n"),
    # issue 17: the readers that bypassed it (synthetic labels also feed the demo's --csv-dir summary)
    "synthetic read_labels": (
        read_synthetic_labels,
        "symbol,start,end,kind\nBTC/USDT,2024-01-01T00:00:00Z,2024-01-01T01:00:00Z,pump\n",
    ),
    "replay social file": (_read_social, "timestamp_ms,social_volume\n1704067200000,12\n"),
    "read_pump_events": (read_pump_events, "symbol,date,hour\nBTC,2022-09-20,12:00\n"),
    "read_feature_file": (
        read_feature_file,
        f"date,pump_index,symbol,gt,{','.join(LA_MORGIA_COLUMNS)}\n"
        f"2021-10-23 15:16:00,0,ABC,0,{','.join('1' for _ in LA_MORGIA_COLUMNS)}\n",
    ),
}


@pytest.mark.parametrize("reader", list(_READERS))
def test_each_user_csv_reader_goes_through_read_csv_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: str
) -> None:
    fn, good = _READERS[reader]
    seen: list[Path] = []
    real = core.csvfiles.read_csv_table

    def spy(path: str | Path, **kwargs: object) -> core.csvfiles.CsvTable:
        seen.append(Path(path))
        return real(path, **kwargs)  # type: ignore[arg-type]

    module = __import__(fn.__module__, fromlist=["read_csv_table"])
    monkeypatch.setattr(module, "read_csv_table", spy)
    path = _file(tmp_path, good)
    fn(path)
    assert seen == [path]


@pytest.mark.parametrize("reader", list(_READERS))
def test_each_user_csv_reader_gets_the_strict_rules(tmp_path: Path, reader: str) -> None:
    fn, good = _READERS[reader]
    header, row = good.splitlines()
    latin = _file(tmp_path, (good + "é".join([row[:3], row[3:]]) + "\n").encode("latin-1"), "latin.csv")
    assert f"{latin}:3: not UTF-8 text" in _error(lambda: fn(latin))
    dup = _file(tmp_path, f"{header},{header.split(',')[0].upper()}\n{row},{row.split(',')[0]}\n", "dup.csv")
    assert "more than once" in _error(lambda: fn(dup))
    ragged = _file(tmp_path, f"{good}{row},extra\n", "ragged.csv")
    assert _error(lambda: fn(ragged)).startswith(f"{ragged}:3: row has ")
    bom = _file(tmp_path, "\ufeff" + good, "bom.csv")
    assert len(fn(bom)) == 1  # type: ignore[arg-type]
