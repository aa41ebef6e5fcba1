from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.metrics import evaluate_series, event_metrics, label_mask, pointwise_metrics, summarize

IDX = pd.date_range("2024-01-01", periods=20, freq="h", tz="UTC")


def _labels(*spans: tuple[int, int, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {"start": [IDX[a] for a, _, _ in spans], "end": [IDX[b] for _, b, _ in spans], "kind": [k for *_, k in spans]}
    )


def test_label_mask_marks_inclusive_windows() -> None:
    mask = label_mask(IDX, _labels((2, 4, "pump_dump"), (10, 10, "flash_crash")))
    assert np.flatnonzero(mask).tolist() == [2, 3, 4, 10]


def test_pointwise_metrics_counts_rows() -> None:
    m = pointwise_metrics(np.array([1, 1, 0, 0], bool), np.array([1, 0, 1, 0], bool))
    assert m == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5})


def test_event_metrics_one_alarm_finds_an_event_and_measures_delay() -> None:
    alarms = np.zeros(20, bool)
    alarms[[4, 15, 16]] = True  # one hit inside event 1 (delay 2 rows), one false run
    ev = event_metrics(IDX, alarms, _labels((2, 5, "pump_dump"), (8, 9, "level_shift")))
    assert ev["events"] == 2 and ev["found"] == 1
    assert ev["alarm_runs"] == 2 and ev["true_runs"] == 1
    assert ev["delay_rows_sum"] == 2 and ev["delay_s_sum"] == 7200


def test_evaluate_series_drops_fault_windows() -> None:
    scores = pd.Series(np.linspace(0, 1, 20), index=IDX)
    alarms = pd.Series(np.zeros(20, bool), index=IDX)
    alarms.iloc[[3, 12]] = True  # 12 is inside a stale window: not a false alarm
    out = summarize([evaluate_series(scores, alarms, _labels((2, 4, "volume_spike"), (11, 13, "stale")))])
    assert out["event_f1"] == 1.0
    assert out["rows"] == 17
    assert 0 <= out["auc_roc"] <= 1
