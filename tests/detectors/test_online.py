"""Causal online scoring with refits, and series files with repeated timestamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.io import read_series_csv, repeated_timestamps_note
from detectors.online import score_online
from detectors.registry import create_detector


def _frame(n: int = 900, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    value = 50 + 5 * np.sin(np.arange(n) / 20) + rng.normal(size=n)
    value[600:] += 30  # a level shift
    value[750:753] += 200
    return pd.DataFrame({"value": value}, index=pd.date_range("2024-01-01", periods=n, freq="5min", tz="UTC"))


def _make(name: str, **threshold):
    params = {"window": 200, "min_periods": 24} if name == "windowed_gaussian" else {"window": 48}
    return lambda: create_detector(name, threshold={"policy": "likelihood", "window": 300, **threshold}, **params)


@pytest.mark.parametrize("name", ["zscore", "windowed_gaussian"])
def test_appending_rows_never_changes_earlier_scores_or_alarms_with_refits(name: str) -> None:
    frame = _frame()
    kw = {"train_rows": 150, "refit_every": 200, "refit_window": 300}
    short = score_online(_make(name, suppress=30), frame.iloc[:700], **kw)
    full = score_online(_make(name, suppress=30), frame, **kw)
    np.testing.assert_array_equal(full.scores.to_numpy()[:700], short.scores.to_numpy())
    np.testing.assert_array_equal(full.alarms.to_numpy()[:700], short.alarms.to_numpy())
    assert full.refits == [150, 350, 550, 750]
    assert full.alarms.iloc[745:760].any()


def test_refit_scores_use_the_model_fitted_before_each_segment() -> None:
    frame = _frame()
    res = score_online(_make("windowed_gaussian"), frame, train_rows=150, refit_every=400, refit_window=300)
    # the segment from row 550 on is scored by a detector fitted on rows 250..549
    det = create_detector("windowed_gaussian", window=200, min_periods=24).fit(frame.iloc[250:550])
    expected = det.score(frame.iloc[550 - det.warmup :]).to_numpy()[det.warmup :]
    np.testing.assert_allclose(res.scores.to_numpy()[550:], expected)


def test_repeated_timestamps_are_kept_in_file_order(tmp_path) -> None:
    path = tmp_path / "dst.csv"
    path.write_text(
        "timestamp,value\n2014-03-09 01:00:00,1\n2014-03-09 02:00:00,2\n2014-03-09 02:00:00,3\n2014-03-09 03:00:00,4\n"
    )
    frame = read_series_csv(path)
    assert frame["value"].tolist() == [1, 2, 3, 4]
    note = repeated_timestamps_note(frame, path)
    assert note is not None and "1 row(s)" in note and "'2014-03-09 02:00:00' on line 4" in note
    det = create_detector("zscore", window=2)
    assert len(det.score(frame)) == 4
