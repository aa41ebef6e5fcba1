"""NAB scoring against hand-computed cases (no shared data).

The scaled sigmoid is ``S(x) = 2 * sigmoid(-5x) - 1 = tanh(-2.5 x)``; a first detection at
relative position ``x`` in a window earns ``S(x) / S(-1) = tanh(-2.5 x) / tanh(2.5)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.nab import (
    PROFILES,
    OverlapCounts,
    alarm_starts,
    file_layout,
    file_score,
    normalised,
    overlap_counts,
    overlap_f1,
    probation_length,
    sweep,
    window_rows,
)

STD = PROFILES["standard"]
LOW_FP = PROFILES["reward_low_FP_rate"]
LOW_FN = PROFILES["reward_low_FN_rate"]


def _one_window(probation: int = 0):
    """100 rows, one window on rows 40..49 (width 10)."""
    return file_layout(100, [(40, 49)], probation=probation)


def _at(*rows: int, n: int = 100) -> np.ndarray:
    d = np.zeros(n, dtype=bool)
    d[list(rows)] = True
    return d


def test_detection_at_window_start_earns_the_full_reward() -> None:
    s = file_score(_at(40), _one_window(), STD)
    assert s.score == pytest.approx(1.0)
    assert (s.found, s.windows, s.false_positives) == (1, 1, 0)
    assert normalised(s.score, 1, STD) == pytest.approx(100.0)


def test_detection_at_window_end_earns_little() -> None:
    # position -(49 - 49 + 1) / 10 = -0.1
    expected = math.tanh(0.25) / math.tanh(2.5)
    assert file_score(_at(49), _one_window(), STD).score == pytest.approx(expected)
    assert expected == pytest.approx(0.24824, abs=1e-5)


def test_detection_halfway_earns_nab_published_value() -> None:
    # row 44: position -(49 - 44 + 1) / 10 = -0.6; NAB's docstring: S(-0.5) = 0.84828
    assert file_score(_at(44), _one_window(), STD).score == pytest.approx(math.tanh(1.5) / math.tanh(2.5))
    assert math.tanh(1.25) == pytest.approx(0.84828, abs=1e-5)


def test_only_the_first_detection_in_a_window_counts() -> None:
    assert file_score(_at(40, 45, 49), _one_window(), STD).score == pytest.approx(1.0)


def test_missed_window_costs_fn_weight_and_normalises_to_zero() -> None:
    s = file_score(_at(), _one_window(), STD)
    assert s.score == pytest.approx(-1.0)
    assert normalised(s.score, 1, STD) == pytest.approx(0.0)


def test_false_positive_before_any_window_costs_fp_weight() -> None:
    s = file_score(_at(10, 40), _one_window(), STD)
    assert s.score == pytest.approx(1.0 - 0.11)
    assert s.false_positives == 1


def test_false_positive_just_after_a_window_costs_the_sigmoid_tail() -> None:
    # row 50: (50 - 49) / (10 - 1) = 1/9 past the window -> 0.11 * tanh(-2.5 / 9)
    s = file_score(_at(40, 50), _one_window(), STD)
    assert s.score == pytest.approx(1.0 + 0.11 * math.tanh(-2.5 / 9))


def test_false_positive_three_widths_after_a_window_costs_the_full_weight() -> None:
    # row 76: (76 - 49) / 9 = 3 -> S = -1
    assert file_score(_at(40, 76), _one_window(), STD).score == pytest.approx(1.0 - 0.11)


def test_probation_rows_are_not_scored() -> None:
    assert probation_length(100) == 15
    assert probation_length(10_000) == 750  # capped at 15 % of 5,000 rows
    s = file_score(_at(5), _one_window(probation=15), STD)  # an FP inside probation: ignored
    assert (s.score, s.false_positives) == (pytest.approx(-1.0), 0)
    # a window entirely inside probation is not counted at all
    early = file_layout(100, [(2, 8)], probation=15)
    assert file_score(_at(3), early, STD).windows == 0


def test_profiles_weigh_false_positives_and_misses() -> None:
    fp_and_miss = _at(10)
    assert file_score(fp_and_miss, _one_window(), LOW_FP).score == pytest.approx(-1.22)
    low_fn = file_score(fp_and_miss, _one_window(), LOW_FN).score
    assert low_fn == pytest.approx(-2.11)
    # null = -A_fn * W = -2, perfect = A_tp * W = 1
    assert normalised(low_fn, 1, LOW_FN) == pytest.approx(100 * (-2.11 + 2) / 3)
    assert normalised(1.0, 1, LOW_FN) == pytest.approx(100.0)


def test_normalisation_over_several_windows() -> None:
    # two windows, one found at its start, one missed: raw 0 -> halfway between null and perfect
    assert normalised(0.0, 2, STD) == pytest.approx(50.0)
    assert math.isnan(normalised(-0.3, 0, STD))


def test_window_rows_maps_times_to_inclusive_row_ranges() -> None:
    times = np.array(["2020-01-01T00:00", "2020-01-01T00:05", "2020-01-01T00:05", "2020-01-01T00:10"], "datetime64[ns]")
    w = [
        (np.datetime64("2020-01-01T00:05"), np.datetime64("2020-01-01T00:07")),
        (np.datetime64("2020-01-02"), np.datetime64("2020-01-03")),
    ]
    assert window_rows(times, w).tolist() == [[1, 2]]  # the repeated stamp is in; the empty window is dropped


def test_sweep_matches_scoring_every_threshold_by_hand() -> None:
    layout = _one_window()
    scores = np.zeros(100)
    scores[10] = 0.95  # false positive before the window
    scores[44] = 0.9  # in the window, position -0.6
    scores[40] = 0.5  # in the window, at its start
    thresholds, totals = sweep([scores], [layout], STD)
    assert thresholds[:4].tolist() == [np.inf, 0.95, 0.9, 0.5]
    mid = math.tanh(1.5) / math.tanh(2.5)
    assert totals[0] == pytest.approx(-1.0)
    assert totals[1] == pytest.approx(-1.11)
    assert totals[2] == pytest.approx(mid - 0.11)
    assert totals[3] == pytest.approx(1.0 - 0.11)
    # threshold 0: every other row fires too (FPs before and after the window)
    assert totals[4] == pytest.approx(file_score(scores >= 0, layout, STD).score)


def test_sweep_equals_file_scores_summed_over_a_corpus() -> None:
    rng = np.random.default_rng(3)
    layouts = [file_layout(300, [(100, 129), (200, 219)]), file_layout(200, []), file_layout(250, [(60, 90)])]
    scores = [np.round(rng.random(lay.n_rows), 2) for lay in layouts]
    scores[0][150] = np.nan  # no score: never a detection
    for profile in PROFILES.values():
        thresholds, totals = sweep(scores, layouts, profile)
        for thr, total in zip(thresholds[::7], totals[::7], strict=True):
            by_file = sum(
                file_score(np.nan_to_num(s, nan=-np.inf) >= thr, lay, profile).score
                for s, lay in zip(scores, layouts, strict=True)
            )
            assert total == pytest.approx(by_file)


def test_alarm_starts_keeps_the_first_row_of_each_run() -> None:
    assert alarm_starts(np.array([0, 1, 1, 0, 1, 1, 1], bool)).tolist() == [0, 1, 0, 0, 1, 0, 0]


def test_overlap_counts_merge_nearby_alarms() -> None:
    layout = file_layout(200, [(40, 49)], probation=0)
    alarms = _at(10, 30, 45, 60, 150, n=200)
    assert overlap_counts(alarms, layout, merge=48) == OverlapCounts(found=1, windows=1, alarms=2, true_alarms=1)
    assert overlap_counts(alarms, layout, merge=5) == OverlapCounts(found=1, windows=1, alarms=5, true_alarms=1)
    p, r, f1 = overlap_f1(OverlapCounts(found=1, windows=2, alarms=4, true_alarms=2))
    assert (p, r, f1) == (0.5, 0.5, pytest.approx(0.5))
    assert overlap_f1(OverlapCounts(0, 0, 0, 0)) == (0.0, 0.0, 0.0)


def test_layout_rejects_overlapping_windows() -> None:
    with pytest.raises(ValueError, match="disjoint"):
        file_layout(100, [(10, 20), (15, 30)])


def test_nab_report_of_one_file() -> None:
    from detectors.nab_eval import nab_report

    times = np.arange(200, dtype=np.int64) * 300_000_000_000
    scores = np.zeros(200)
    scores[100] = 5.0
    alarms = scores > 1
    report = nab_report(times, scores, alarms, [(times[100], times[119])])
    assert report["probation_rows"] == 30 and report["windows"] == 1 and report["found"] == 1
    assert report["alerted_standard"] == pytest.approx(100.0)
    assert report["optimised_standard"] == pytest.approx(100.0)
    assert report["overlap_f1"] == pytest.approx(1.0)
