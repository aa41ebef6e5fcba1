from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bot.cli.root import app
from detectors.pump.detector import PumpDumpDetector
from detectors.pump.features import read_feature_file
from detectors.pump.metrics import pump_metrics
from tests.detectors.pump.pump_data import feature_table

runner = CliRunner()


@pytest.mark.slow
def test_pumpdump_train_then_evaluate_writes_the_metrics_json(tmp_path: Path) -> None:
    train_csv, test_csv = tmp_path / "train.csv", tmp_path / "test.csv"
    feature_table(8, 14, seed=1).to_csv(train_csv, index=False)
    test = feature_table(4, 14, seed=2)
    test["pump_index"] += 100
    test.to_csv(test_csv, index=False)
    model = tmp_path / "model"
    res = runner.invoke(
        app,
        [
            "pumpdump",
            "train",
            "--features",
            str(train_csv),
            "--model",
            str(model),
            "--lookback",
            "6",
            "--epochs",
            "2",
            "--ensemble",
            "2",
        ],
    )
    assert res.exit_code == 0, res.output
    out = tmp_path / "r.json"
    res = runner.invoke(
        app, ["pumpdump", "evaluate", "--model", str(model), "--features", str(test_csv), "--json", str(out)]
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"precision", "recall", "f1", "auc_roc", "auc_pr", "event_hit_rate"}
    # evaluation uses the threshold fixed at training, whatever the test labels are
    det = PumpDumpDetector.load(model)
    table = read_feature_file(test_csv)
    expected = pump_metrics(
        table["pump_index"].to_numpy(), table["gt"].to_numpy(), det.score_table(table), det.threshold_
    )
    np.testing.assert_allclose([metrics[k] for k in expected], list(expected.values()), rtol=1e-5)


def test_pumpdump_train_on_malformed_file_prints_one_line_error(tmp_path: Path) -> None:
    bad = feature_table(2, 5).astype({"std_price": object})
    bad.loc[3, "std_price"] = "abc"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    res = runner.invoke(app, ["pumpdump", "train", "--features", str(path), "--model", str(tmp_path / "m")])
    assert res.exit_code == 1
    assert "bad.csv:5: column 'std_price'" in res.output


def test_pumpdump_train_rejects_event_ids_shared_between_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    feature_table(2, 5).to_csv(a, index=False)
    feature_table(2, 5).to_csv(b, index=False)
    res = runner.invoke(
        app, ["pumpdump", "train", "--features", str(a), "--features", str(b), "--model", str(tmp_path / "m")]
    )
    assert res.exit_code == 1
    assert "pump_index 0 also appears in" in res.output
