from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bot.cli.root import app

runner = CliRunner()


def _value_csv(path, n: int = 400) -> pd.DatetimeIndex:
    rng = np.random.default_rng(0)
    value = 0.2 * np.sin(np.arange(n) / 6) + rng.normal(0, 0.05, n)
    value[min(300, n - 1)] += 5
    ts = 1_700_000_000 + 3600 * np.arange(n)  # epoch seconds
    pd.DataFrame({"timestamp": ts, "value": value}).to_csv(path, index=False)
    return pd.to_datetime(ts, unit="s", utc=True)


def test_cli_score_and_evaluate_univariate(tmp_path) -> None:
    times = _value_csv(tmp_path / "v.csv")
    out = tmp_path / "scores.csv"
    res = runner.invoke(
        app,
        ["score", "--detector", "zscore", "--input", str(tmp_path / "v.csv"), "--output", str(out), "--with-threshold"],
    )
    assert res.exit_code == 0, res.output
    scores = pd.read_csv(out)
    assert list(scores.columns[:3]) == ["timestamp", "score", "is_anomaly"]
    assert len(scores) == 400 and scores["score"].iloc[:48].isna().all()
    assert scores["is_anomaly"].iloc[300] == 1
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"start": [int(times[299].value // 10**6)], "end": [int(times[302].value // 10**6)]}).to_csv(
        labels, index=False
    )
    res = runner.invoke(
        app, ["evaluate", "--scores", str(out), "--labels", str(labels), "--json", "--plot", str(tmp_path / "p.png")]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output[res.output.index("{") :])[str(out)]
    assert metrics["event_recall"] == 1.0
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_cli_score_reads_candle_import_format(tmp_path, shared_data) -> None:
    src = pd.read_csv(shared_data / "candles" / "XRP_ETH-5m.csv")
    src.iloc[:700].to_csv(tmp_path / "c.csv", index=False)  # zscore looks back a day of 5-minute bars (288)
    out = tmp_path / "s.csv"
    res = runner.invoke(
        app, ["score", "-d", "zscore", "-i", str(tmp_path / "c.csv"), "-o", str(out), "--train-fraction", "0.6"]
    )
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out)) == 700


def test_cli_score_errors_are_one_line(tmp_path) -> None:
    _value_csv(tmp_path / "v.csv", n=30)
    res = runner.invoke(
        app, ["score", "-d", "lstm_forecaster", "-i", str(tmp_path / "v.csv"), "-o", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 1
    assert "needs at least" in res.output or "too little training data" in res.output
    res = runner.invoke(
        app,
        ["score", "-d", "zscore", "-i", str(tmp_path / "v.csv"), "-o", str(tmp_path / "o.csv"), "--columns", "price"],
    )
    assert res.exit_code == 1 and "price" in res.output
    res = runner.invoke(app, ["score", "-d", "bogus", "-i", str(tmp_path / "v.csv"), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "valid names" in res.output


@pytest.mark.slow
def test_cli_train_registers_a_model_version(tmp_path, make_candles) -> None:
    from storage.candle_csv import write_candle_csv

    write_candle_csv(make_candles(200, seed=1), tmp_path / "A_USDT-1h.csv")
    db = f"sqlite:///{tmp_path / 'v.db'}"
    args = ["train", "-d", "lstm_forecaster", "-i", str(tmp_path / "A_USDT-1h.csv"), "--db", db]
    args += ["--models-dir", str(tmp_path / "models"), "-p", "epochs=2", "-p", "units=4", "-p", "lookback=6"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "version 1" in res.output
    assert (tmp_path / "models" / "lstm_forecaster" / "shared" / "v1" / "model.keras").is_file()
    res = runner.invoke(app, args)
    assert "version 2" in res.output


def test_cli_score_keeps_repeated_timestamps_and_says_so(tmp_path) -> None:
    n = 500
    stamps = pd.date_range("2014-03-08", periods=n, freq="5min").strftime("%Y-%m-%d %H:%M:%S").to_numpy().copy()
    stamps[200:212] = stamps[200]  # as NAB's files show a daylight-saving change: one stamp repeated
    value = np.random.default_rng(1).normal(size=n)
    pd.DataFrame({"timestamp": stamps, "value": value}).to_csv(tmp_path / "dst.csv", index=False)
    out = tmp_path / "s.csv"
    res = runner.invoke(app, ["score", "-d", "zscore", "-i", str(tmp_path / "dst.csv"), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "11 row(s) repeat an earlier timestamp" in " ".join(res.output.split())
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["timestamp", "score", "is_anomaly"] and len(scores) == n
    assert (scores["timestamp"].iloc[200:212] == scores["timestamp"].iloc[200]).all()


def test_cli_score_refits_and_evaluate_nab(tmp_path) -> None:
    times = _value_csv(tmp_path / "v.csv", n=600)
    out = tmp_path / "scores.csv"
    res = runner.invoke(
        app,
        ["score", "-d", "zscore", "-i", str(tmp_path / "v.csv"), "-o", str(out), "--refit-every", "200"],
    )
    assert res.exit_code == 0, res.output
    assert "refitted 2 times" in res.output
    windows = tmp_path / "windows.json"
    windows.write_text(
        json.dumps({"x/v.csv": [[str(times[290].tz_localize(None)), str(times[310].tz_localize(None))]]})
    )
    res = runner.invoke(
        app, ["evaluate", "--nab", "-s", str(out), "-l", str(windows), "--nab-key", "x/v.csv", "--json"]
    )
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{") :])[str(out)]
    assert report["windows"] == 1 and report["found"] == 1 and report["probation_rows"] == 90
    assert report["alerted_standard"] > 50
    res = runner.invoke(app, ["evaluate", "--nab", "-s", str(out), "-l", str(windows)])
    assert res.exit_code != 0 and "--nab-key" in res.output
