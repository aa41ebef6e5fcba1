"""Scoring cross-venue alarms against planted dislocations: found events, alert precision, the venue named.

What a user sees is one message per venue and alarm run (the outbox's cooldown folds a
run's bars into one alert), so the unit counted here is the *alarm run of one venue*:

* a run is **true** when it overlaps a labelled dislocation of its group, extended by
  ``tolerance`` bars after the label's end (a venue snapping back can still be flagged);
* a true run **names the venue correctly** when its venue is the label's venue;
* a label is **found** when any venue of its group has an alarm inside that span;
* event precision = true runs / runs, recall = found / labels, F1 from those;
* false runs per group-week is the false-alarm rate (every false run counts, on any venue).

Pure functions over boolean alarm arrays; no detector or I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["alarm_runs", "group_alarm_metrics", "pool_group_metrics"]


def alarm_runs(alarms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) positions of runs of True in a boolean array."""
    padded = np.concatenate([[False], np.asarray(alarms, bool), [False]]).astype(np.int8)
    diff = np.diff(padded)
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1) - 1


def group_alarm_metrics(
    alarms: Mapping[str, pd.Series],
    labels: pd.DataFrame,
    *,
    tolerance: int = 2,
    scored_from: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Counts for one group.

    Parameters
    ----------
    alarms : venue key -> boolean Series on the venue's bar times.
    labels : this group's dislocations, columns ``venue_key, start, end`` (bar-open times, inclusive).
    tolerance : bars after a label's end that still count as that label.
    scored_from : labels starting before this time are ignored (warm-up); runs are counted from it.
    """
    if scored_from is not None and len(labels):
        labels = labels[labels["start"] >= scored_from]
    step = _step(alarms)
    spans = [(row.venue_key, row.start, row.end + tolerance * step) for row in labels.itertuples()]
    found = np.zeros(len(spans), dtype=bool)
    runs = true_runs = correct = 0
    weeks = 0.0
    for venue, series in alarms.items():
        values = series.to_numpy(dtype=bool)
        times = series.index
        if scored_from is not None:
            keep = times >= scored_from
            values, times = values[keep], times[keep]
        if len(times) > 1:
            weeks = max(weeks, (times[-1] - times[0]).total_seconds() / (7 * 86_400))
        starts, ends = alarm_runs(values)
        for s, e in zip(starts, ends, strict=True):
            runs += 1
            t0, t1 = times[s], times[e]
            hits = [i for i, (_, ls, le) in enumerate(spans) if t0 <= le and t1 >= ls]
            if hits:
                true_runs += 1
                found[hits] = True
                if any(spans[i][0] == venue for i in hits):
                    correct += 1
    return {
        "labels": len(spans),
        "found": int(found.sum()),
        "runs": runs,
        "true_runs": true_runs,
        "correct_venue_runs": correct,
        "false_runs": runs - true_runs,
        "weeks": weeks,
    }


def _step(alarms: Mapping[str, pd.Series]) -> pd.Timedelta:
    for series in alarms.values():
        if len(series) > 1:
            return pd.Timedelta(np.median(np.diff(pd.DatetimeIndex(series.index).as_unit("ns").asi8)), unit="ns")
    return pd.Timedelta(0)


def pool_group_metrics(parts: list[dict[str, Any]]) -> dict[str, float]:
    """Pool :func:`group_alarm_metrics` over groups: precision, recall, F1, venue accuracy, false runs per week."""
    total = {k: sum(p[k] for p in parts) for k in ("labels", "found", "runs", "true_runs", "correct_venue_runs")}
    group_weeks = sum(p["weeks"] for p in parts)
    precision = total["true_runs"] / total["runs"] if total["runs"] else 0.0
    recall = total["found"] / total["labels"] if total["labels"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        **{k: float(v) for k, v in total.items()},
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "venue_accuracy": total["correct_venue_runs"] / total["true_runs"] if total["true_runs"] else float("nan"),
        "group_weeks": group_weeks,
        "false_runs_per_group_week": (total["runs"] - total["true_runs"]) / group_weeks
        if group_weeks
        else float("nan"),
    }
