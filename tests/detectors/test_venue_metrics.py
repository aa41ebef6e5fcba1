"""Counting cross-venue alarm runs against planted dislocations, on hand-made cases."""

from __future__ import annotations

import pandas as pd
import pytest

from detectors.venue_metrics import alarm_runs, group_alarm_metrics, pool_group_metrics

INDEX = pd.date_range("2024-01-01", periods=20, freq="h", tz="UTC")


def _alarms(**bars: list[int]) -> dict[str, pd.Series]:
    return {venue: pd.Series(INDEX.isin(INDEX[hit]), index=INDEX) for venue, hit in bars.items()}


def _labels(*rows: tuple[str, int, int]) -> pd.DataFrame:
    return pd.DataFrame(
        {"venue_key": [r[0] for r in rows], "start": [INDEX[r[1]] for r in rows], "end": [INDEX[r[2]] for r in rows]}
    )


def test_alarm_runs_finds_runs_of_true() -> None:
    starts, ends = alarm_runs([False, True, True, False, True])
    assert starts.tolist() == [1, 4] and ends.tolist() == [2, 4]


def test_a_run_on_the_labelled_venue_is_true_and_named_right() -> None:
    out = group_alarm_metrics(_alarms(a=[5, 6], b=[]), _labels(("a", 4, 7)))
    assert (out["labels"], out["found"], out["runs"], out["true_runs"], out["correct_venue_runs"]) == (1, 1, 1, 1, 1)


def test_a_run_on_the_wrong_venue_finds_the_event_but_names_it_wrong() -> None:
    out = group_alarm_metrics(_alarms(a=[], b=[5]), _labels(("a", 4, 7)))
    assert out["found"] == 1 and out["true_runs"] == 1 and out["correct_venue_runs"] == 0


def test_tolerance_after_the_end_and_false_runs_elsewhere() -> None:
    out = group_alarm_metrics(_alarms(a=[9, 15]), _labels(("a", 4, 7)), tolerance=2)
    assert out["true_runs"] == 1 and out["false_runs"] == 1
    out = group_alarm_metrics(_alarms(a=[10]), _labels(("a", 4, 7)), tolerance=2)
    assert out["found"] == 0 and out["false_runs"] == 1


def test_scored_from_drops_warmup_labels_and_runs() -> None:
    out = group_alarm_metrics(_alarms(a=[1, 12]), _labels(("a", 0, 2), ("a", 11, 13)), scored_from=INDEX[5])
    assert out["labels"] == 1 and out["runs"] == 1 and out["found"] == 1


def test_pooling_gives_f1_venue_accuracy_and_false_rate_per_group_week() -> None:
    parts = [
        {"labels": 2, "found": 2, "runs": 4, "true_runs": 3, "correct_venue_runs": 3, "false_runs": 1, "weeks": 1.0},
        {"labels": 2, "found": 1, "runs": 1, "true_runs": 1, "correct_venue_runs": 0, "false_runs": 0, "weeks": 1.0},
    ]
    out = pool_group_metrics(parts)
    assert out["precision"] == pytest.approx(0.8) and out["recall"] == pytest.approx(0.75)
    assert out["f1"] == pytest.approx(2 * 0.8 * 0.75 / 1.55)
    assert out["venue_accuracy"] == pytest.approx(0.75)
    assert out["false_runs_per_group_week"] == pytest.approx(0.5)
