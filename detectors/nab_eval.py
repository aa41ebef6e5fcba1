"""Judging a detector's scores and alarms on NAB files: the numbers ``bench/eval_nab.py`` and
``vigil evaluate --nab`` print.

Per detector, over a set of files:

* **as alerted**: the detector's own alarms at its default threshold, one detection per run of
  flagged rows (its first row: one alert per incident, as the bot sends it), scored with NAB's
  standard, reward_low_FP_rate and reward_low_FN_rate profiles and normalised (0 = silence,
  100 = perfect);
* **optimised**: NAB's own protocol on the raw anomaly score, the threshold swept over the
  whole set of files for each profile (every row at or above it is a detection);
* **overlap**: window recall, precision of alarms merged when at most 48 rows apart, and F1.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.nab import (
    PROFILES,
    FileLayout,
    OverlapCounts,
    alarm_starts,
    file_score,
    normalised,
    overlap_counts,
    overlap_f1,
    sweep,
)

__all__ = ["FileRun", "file_rows", "summarize_runs"]

MERGE_ROWS = 48


@dataclass(frozen=True)
class FileRun:
    """One detector's output on one file: the raw score (NaN in warm-up) and the alarms, per row."""

    scores: np.ndarray
    alarms: np.ndarray


def summarize_runs(runs: Mapping[str, FileRun], layouts: Mapping[str, FileLayout]) -> dict[str, Any]:
    """As-alerted and optimised NAB scores (3 profiles) and overlap P/R/F1 over all ``runs``."""
    keys = list(runs)
    out: dict[str, Any] = {"files": len(keys)}
    for pname, profile in PROFILES.items():
        raw = 0.0
        windows = 0
        for k in keys:
            s = file_score(alarm_starts(runs[k].alarms), layouts[k], profile)
            raw += s.score
            windows += s.windows
        out[f"alerted_{pname}"] = normalised(raw, windows, profile)
        thresholds, totals = sweep([runs[k].scores for k in keys], [layouts[k] for k in keys], profile)
        best = int(np.argmax(totals))
        out[f"optimised_{pname}"] = normalised(float(totals[best]), windows, profile)
        out[f"threshold_{pname}"] = float(thresholds[best])
    counts = OverlapCounts(0, 0, 0, 0)
    for k in keys:
        counts = counts + overlap_counts(runs[k].alarms, layouts[k], merge=MERGE_ROWS)
    p, r, f1 = overlap_f1(counts)
    out.update(
        overlap_precision=p,
        overlap_recall=r,
        overlap_f1=f1,
        windows=counts.windows,
        found=counts.found,
        alarms=counts.alarms,
        true_alarms=counts.true_alarms,
        alerts=int(sum(alarm_starts(runs[k].alarms)[layouts[k].probation :].sum() for k in keys)),
    )
    return out


def file_rows(runs: Mapping[str, FileRun], layouts: Mapping[str, FileLayout]) -> list[dict[str, Any]]:
    """Per file: as-alerted standard score (raw and normalised), windows found, alerts, FP alerts."""
    rows = []
    std = PROFILES["standard"]
    for k, run in runs.items():
        layout = layouts[k]
        s = file_score(alarm_starts(run.alarms), layout, std)
        c = overlap_counts(run.alarms, layout, merge=MERGE_ROWS)
        rows.append(
            {
                "file": k,
                "windows": s.windows,
                "found": s.found,
                "alerts": int(alarm_starts(run.alarms)[layout.probation :].sum()),
                "fp_alerts": s.false_positives,
                "raw_standard": s.score,
                "standard": normalised(s.score, s.windows, std),
                "merged_alarms": c.alarms,
                "true_alarms": c.true_alarms,
            }
        )
    return rows


def nab_report(
    times: np.ndarray, scores: np.ndarray, alarms: np.ndarray, windows: list[tuple[Any, Any]]
) -> dict[str, Any]:
    """Everything ``vigil evaluate --nab`` prints for one scored file.

    ``times``: int64 epoch ns per row (sorted, repeats allowed); ``windows``: (start, end) in the
    same unit. The threshold of the "optimised" figures is swept on this file alone (NAB sweeps
    it over a whole corpus; ``bench/eval_nab.py`` does that).
    """
    from detectors.nab import file_layout, window_rows

    layout = file_layout(len(times), window_rows(np.asarray(times), windows))
    out = summarize_runs({"file": FileRun(np.asarray(scores, float), np.asarray(alarms, bool))}, {"file": layout})
    out["rows"] = int(len(times))
    out["probation_rows"] = layout.probation
    return out
