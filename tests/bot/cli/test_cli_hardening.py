"""Issue 17, failures 5 and 7 (CLI part): hostile but well-formed input ends in one line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli.root import app
from storage.candles import load_candles
from storage.db import open_database

runner = CliRunner()

CSV = (
    "timestamp_ms,open,high,low,close,volume\n1704067200000,100,101,99,100.5,10\n1704070800000,100.5,102,100,101.5,12\n"
)


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize(
    "scores",
    [
        "timestamp,score,is_anomaly\n2024-01-01T00:00:00,1e308,0\n2024-01-01T01:00:00,inf,1\n",
        "timestamp,score,is_anomaly\n2024-01-01T00:00:00,-inf,0\n2024-01-01T01:00:00,inf,1\n",
        "timestamp,score,is_anomaly,threshold\n2024-01-01T00:00:00,,0,inf\n2024-01-01T01:00:00,inf,1,1e308\n",
    ],
)
def test_evaluate_plot_draws_infinite_scores(tmp_path: Path, scores: str) -> None:
    (tmp_path / "s.csv").write_text(scores)
    (tmp_path / "l.csv").write_text("start,end\n2024-01-01T01:00:00,2024-01-01T01:30:00\n")
    out = tmp_path / "p.png"
    r = runner.invoke(
        app,
        ["evaluate", "--scores", str(tmp_path / "s.csv"), "--labels", str(tmp_path / "l.csv"), "--plot", str(out)],
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("option", "value", "why"),
    [
        ("--exchange", "", "--exchange"),
        ("--exchange", "<b>binance</b>", "--exchange"),
        ("--exchange", "bin ance", "--exchange"),
        ("--symbol", "", "bad symbol"),
        ("--symbol", "<b>x</b>", "bad symbol"),
        ("--symbol", "BTC/USDT; DROP", "bad symbol"),
    ],
)
def test_import_candles_refuses_empty_or_markup_exchange_and_symbol(
    tmp_path: Path, option: str, value: str, why: str
) -> None:
    path = tmp_path / "c.csv"
    path.write_text(CSV)
    url = f"sqlite:///{tmp_path / 'v.db'}"
    args = {"--exchange": "binance", "--symbol": "BTC/USDT", option: value}
    r = runner.invoke(
        app,
        ["import-candles", str(path), *[x for kv in args.items() for x in kv], "--timeframe", "1h", "--db", url],
    )
    assert r.exit_code == 1, r.output
    assert len(_lines(r.output)) == 1 and why in r.output
    _engine, factory = open_database(url)
    with factory() as s:
        assert load_candles(s, "binance", "BTC/USDT", "1h").empty


BAD_FILES = {
    "binary": b"timestamp_ms,open\x00,high\n\x01\x02\xff\xfe\n",
    "latin-1": "timestamp,score,is_anomaly\n2024-01-01T00:00:00,1,0\n2024-01-01T01:00:00,2\xe9,1\n".encode("latin-1"),
    "duplicated column": b"timestamp,score,score,is_anomaly\n2024-01-01T00:00:00,1,2,0\n",
    "extra field": b"timestamp,score,is_anomaly\n2024-01-01T00:00:00,1,0,7\n",
    "is_anomaly 7": b"timestamp,score,is_anomaly\n2024-01-01T00:00:00,1,7\n",
}


@pytest.mark.parametrize(
    ("command", "bad"),
    [
        (command, bad)
        for command in ("import-candles", "score", "evaluate", "backtest")
        for bad in BAD_FILES
        if not (bad == "is_anomaly 7" and command in ("score", "backtest"))  # a plain number column there
    ],
)
def test_every_file_command_refuses_a_bad_file_in_one_line(tmp_path: Path, command: str, bad: str) -> None:
    """Failures 5 and 7 for files: fixed for these commands by the shared reader (core/csvfiles.py, issue 15)."""
    path = tmp_path / "bad.csv"
    path.write_bytes(BAD_FILES[bad])
    good = tmp_path / "good.csv"
    good.write_text(CSV)
    labels = tmp_path / "labels.csv"
    labels.write_text("start,end\n2024-01-01T00:00:00,2024-01-01T01:00:00\n")
    args = {
        "import-candles": [
            "import-candles",
            str(path),
            "--exchange",
            "binance",
            "--symbol",
            "BTC/USDT",
            "--timeframe",
            "1h",
            "--db",
            f"sqlite:///{tmp_path / 'v.db'}",
        ],
        "score": ["score", "--detector", "zscore", "--input", str(path), "--output", str(tmp_path / "o.csv")],
        "evaluate": ["evaluate", "--scores", str(path), "--labels", str(labels)],
        "backtest": ["backtest", "--candles", str(good), "--events", str(path), "--strategy", "fixed_hold"],
    }[command]
    r = runner.invoke(app, args)
    assert r.exit_code == 1, r.output
    [line] = _lines(r.output)
    assert line.startswith(f"error: {path}") and "Traceback" not in r.output
