"""``vigil synth``: files in the import format that ``vigil import-candles`` accepts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from bot.cli.root import app
from feeds.synthetic import generate_market
from feeds.synthetic_io import read_labels
from storage.candle_csv import read_candle_csv
from storage.candles import load_candles
from storage.db import open_database

runner = CliRunner()


def test_synth_writes_candles_social_and_labels(tmp_path: Path) -> None:
    out = tmp_path / "market"
    result = runner.invoke(
        app,
        [
            "synth",
            "--symbols",
            "3",
            "--days",
            "20",
            "--timeframe",
            "1h",
            "--out",
            str(out),
            "--seed",
            "5",
            "--anomaly-rate",
            "0.02",
        ],
    )
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"SYN00{i}_USDT-1h.csv" for i in range(3)]
        + [f"social-SYN00{i}_USDT-1h.csv" for i in range(3)]
        + ["labels.csv"]
    )
    expected = generate_market(3, 20, "1h", 5, anomaly_rate=0.02)
    frame = read_candle_csv(out / "SYN001_USDT-1h.csv")
    want = expected.candles["SYN001/USDT"]
    pd.testing.assert_index_equal(frame.index, want.index, check_names=False)
    pd.testing.assert_frame_equal(
        frame, want[frame.columns], check_exact=False, rtol=1e-9, check_names=False, check_index_type=False
    )
    social = pd.read_csv(out / "social-SYN001_USDT-1h.csv")
    assert list(social.columns) == ["timestamp_ms", "social_volume"]
    assert (social["social_volume"].to_numpy() == want["social_volume"].to_numpy()).all()
    assert (out / "labels.csv").read_text().splitlines()[0] == "symbol,start,end,kind"
    labels = read_labels(out / "labels.csv")
    assert len(labels) == len(expected.labels) > 0
    assert (labels["start"].to_numpy() == expected.labels["start"].to_numpy()).all()


def test_synth_output_imports_with_import_candles(tmp_path: Path, sqlite_url: str) -> None:
    out = tmp_path / "m"
    assert runner.invoke(app, ["synth", "--symbols", "2", "--days", "10", "--out", str(out)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "import-candles",
            str(out / "SYN000_USDT-1h.csv"),
            "--exchange",
            "synthetic",
            "--symbol",
            "SYN000/USDT",
            "--timeframe",
            "1h",
            "--db",
            sqlite_url,
        ],
    )
    assert result.exit_code == 0, result.output
    _engine, factory = open_database(sqlite_url)
    with factory() as session:
        stored = load_candles(session, "synthetic", "SYN000/USDT", "1h")
    assert len(stored) == len(read_candle_csv(out / "SYN000_USDT-1h.csv"))


def test_synth_bad_timeframe_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["synth", "--timeframe", "7x", "--out", str(tmp_path / "x")])
    assert result.exit_code == 1
    assert "7x" in result.output
    assert "Traceback" not in result.output
