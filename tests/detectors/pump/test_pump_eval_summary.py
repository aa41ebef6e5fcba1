"""The real-data comparison's summary: paired per-split differences, not just means side by side."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "eval_pump_dump.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("eval_pump_dump", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(cnn: list[float], naive: list[float]) -> pd.DataFrame:
    rows = []
    for split, (c, n) in enumerate(zip(cnn, naive, strict=True)):
        for method, v in (("CNN-LSTM", c), ("random forest", 0.05), ("naive price jump", n)):
            rows.append({"run": "r", "split": split, "method": method, "precision": 0, "recall": 0, "f1": 0})
            rows[-1].update({"auc_roc": 0.5, "auc_pr": v, "event_hit_rate": v})
    return pd.DataFrame(rows)


def test_summary_reports_paired_difference_interval_and_splits_ahead(bench) -> None:
    _, diffs = bench.summarize(_rows([0.20, 0.10, 0.30, 0.10], [0.10, 0.10, 0.20, 0.20]))
    row = diffs[(diffs["against"] == "naive price jump") & (diffs["metric"] == "auc_pr")].iloc[0]
    assert row["mean diff"] == pytest.approx(0.025)
    assert row["splits ahead"] == "2.5 of 4"  # one tie counts half
    low, high = (float(v) for v in row["95% interval"].strip("[]").split(","))
    assert low < 0 < high  # a spread this wide around +0.025 is a tie, and the interval says so


def test_summary_interval_excludes_zero_when_the_cnn_is_ahead_on_every_split(bench) -> None:
    _, diffs = bench.summarize(_rows([0.20, 0.21, 0.19, 0.22], [0.10, 0.10, 0.11, 0.10]))
    row = diffs[(diffs["against"] == "naive price jump") & (diffs["metric"] == "event_hit_rate")].iloc[0]
    low, high = (float(v) for v in row["95% interval"].strip("[]").split(","))
    assert 0 < low < row["mean diff"] < high
    assert row["splits ahead"] == "4 of 4"
