"""Property tests (Hypothesis) for every parser of user files: bytes, unicode and numbers at their extremes.

Whatever the file holds, a reader either returns a frame or raises vigil's own error (an
``InputError``, ``ConfigError`` or ``DetectorError``) whose message is one line naming the file;
never a pandas, numpy or codec exception, never a wrapped timestamp. Examples are few and
seeded (``derandomize``) so the suite stays fast and CI sees the same cases every run.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backtest.events import read_events_csv
from core.config import load_config
from core.errors import BotError, ConfigError, DetectorError
from detectors.io import read_labels, read_scores, read_series_csv
from detectors.pump.dataset import read_pump_events
from storage.candle_csv import read_candle_csv

FAST = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])

# -- what a hostile file is made of ------------------------------------------------------------------------------
EXTREME_NUMBERS = st.sampled_from(
    [
        "0",
        "-0",
        "1e308",
        "-1e308",
        "1e309",
        "inf",
        "-inf",
        "nan",
        "NaN",
        "1e-320",
        "5e-324",
        "99999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775809",
        "1e16",
        "1704067200000",
        "1704067200",
        "0x1F",
        "1_000",
        "١٢٣",  # Arabic-Indic digits
    ]
)
TIMES = st.sampled_from(
    ["2024-01-01T00:00:00Z", "9999-12-31", "2262-04-12", "1677-09-21", "0000-00-00", "2024-02-30", "24:00", ""]
)
CELLS = st.one_of(
    EXTREME_NUMBERS,
    TIMES,
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(max_size=12),
    st.text(alphabet=st.characters(categories=["Cc", "Zs", "Po"]), max_size=4),
)


def _row(cells: list[str]) -> str:
    return ",".join(cells)


@st.composite
def csv_files(draw: Any, header: list[str]) -> bytes:
    """A file that looks like the expected CSV (its header, or a mangled one) with hostile cells, or raw bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=200))
    names = list(header)
    if draw(st.booleans()):
        names = draw(st.lists(st.sampled_from([*header, "", "x", header[0].upper()]), min_size=1, max_size=8))
    rows = draw(
        st.lists(
            st.lists(CELLS, min_size=max(1, len(names) - 1), max_size=len(names) + 1).map(_row),
            min_size=0,
            max_size=6,
        )
    )
    text = "\n".join([_row(names), *rows]) + "\n"
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8-sig", "utf-16", "latin-1"]))
    return text.encode(encoding, errors="replace")


def _check_reader(reader: Callable[[Path], Any], content: bytes, *, errors: type[BotError] = BotError) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "in.csv"
        path.write_bytes(content)
        try:
            out = reader(path)
        except errors as err:
            message = str(err)
            assert "\n" not in message, message
            assert str(path) in message or "in.csv" in message, message
            return
    if isinstance(out, pd.DataFrame):
        for col in out.columns:
            if isinstance(out[col].dtype, pd.DatetimeTZDtype):  # no wrapped or out-of-range times got through
                values = out[col].to_numpy(dtype="datetime64[ns]").astype("int64")
                assert (values >= 0).all()


CANDLE = ["timestamp_ms", "open", "high", "low", "close", "volume"]


@FAST
@given(csv_files(CANDLE))
def test_candle_csv_reader_returns_or_names_the_problem(content: bytes) -> None:
    _check_reader(read_candle_csv, content)


@FAST
@given(csv_files(["timestamp", "open", "high", "low", "close", "volume"]))
def test_candle_csv_reader_with_iso_times(content: bytes) -> None:
    _check_reader(read_candle_csv, content)


@FAST
@given(csv_files(["timestamp", "value", "symbol"]))
def test_series_reader(content: bytes) -> None:
    _check_reader(read_series_csv, content)


@FAST
@given(csv_files(["timestamp", "score", "is_anomaly", "threshold"]))
def test_score_reader(content: bytes) -> None:
    _check_reader(read_scores, content)


@FAST
@given(csv_files(["start", "end", "symbol", "kind"]))
def test_label_reader(content: bytes) -> None:
    _check_reader(read_labels, content)


@FAST
@given(csv_files(["timestamp", "score", "detector", "symbol", "severity"]))
def test_events_reader(content: bytes) -> None:
    _check_reader(read_events_csv, content)


@FAST
@given(csv_files(["symbol", "date", "hour", "exchange"]))
def test_pump_events_reader(content: bytes) -> None:
    _check_reader(read_pump_events, content)


# -- config files ------------------------------------------------------------------------------------------------
SECRET = "123456789:AAHsecretsecretsecretsecretsecret00"
JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**65), 2**65), st.floats(), st.text(max_size=8)),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


def _toml_value(value: Any) -> str:
    if value is None:
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if np.isfinite(value) else ("nan" if np.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"


@FAST
@given(
    st.sampled_from(
        [
            "telegram.token",
            "database.url",
            "exchanges.binance.ccxt_config.apiKey",
            "exchanges.binance.ccxt_config.secret",
        ]
    ),
    JSONISH,
)
def test_config_never_echoes_a_secret_typed_wrongly(key: str, value: Any) -> None:
    """A secret of the wrong type is refused (or accepted as text) without its value in the message."""
    *table, name = key.split(".")
    secret_value = [SECRET, value] if isinstance(value, list) else {"x": SECRET} if isinstance(value, dict) else value
    text = f"[{'.'.join(table)}]\n{name} = {_toml_value(secret_value)}\n"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text)
        try:
            load_config(path, environ={})
        except ConfigError as err:
            assert SECRET not in str(err) and "AAHsecret" not in str(err)


@FAST
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8", "replace"))))
def test_config_file_of_any_bytes_is_a_config_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_bytes(content)
        try:
            load_config(path, environ={})
        except ConfigError as err:
            first = str(err).splitlines()[0]
            assert str(path) in first or "defaults" in first


# -- model metadata ----------------------------------------------------------------------------------------------
@FAST
@given(st.data())
def test_model_metadata_with_any_value_anywhere_is_refused_or_loads(data: st.DataObject) -> None:
    from detectors.base import METADATA_FILE
    from detectors.zscore import ZScoreDetector

    rng = np.random.default_rng(0)
    idx = pd.date_range("2024-01-01", periods=120, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(idx))))
    frame = pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": rng.uniform(1, 2, len(idx)),
        },
        index=idx,
    )
    with tempfile.TemporaryDirectory() as folder:
        saved = ZScoreDetector(window=24).fit(frame).save(Path(folder) / "m")
        meta = json.loads((saved / METADATA_FILE).read_text())
        path = data.draw(st.sampled_from(_paths(meta)))
        _assign(meta, path, data.draw(JSONISH))
        (saved / METADATA_FILE).write_text(json.dumps(meta))
        try:
            det = ZScoreDetector.load(saved)
        except DetectorError as err:
            assert "\n" not in str(err) and METADATA_FILE in str(err)
            return
        try:
            scores = det.score(frame)
        except DetectorError as err:  # e.g. a window longer than the frame: refused, in one line
            assert "\n" not in str(err)
            return
        assert np.isfinite(scores.to_numpy()).any(), f"{path} = {meta_value(meta, path)!r} loads but never scores"


def _paths(meta: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(meta, dict):
        for key, value in meta.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(meta, list) and meta and not isinstance(meta[0], list):
        out += [(*prefix, i) for i in range(min(len(meta), 3))]
    return out


def meta_value(meta: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        meta = meta[part]
    return meta


def _assign(meta: Any, path: tuple[Any, ...], value: Any) -> None:
    target = meta
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
