"""Evaluation metrics as pure functions: alarms and scores against labelled anomaly windows.

* point-wise precision/recall/F1: every row is a sample; a row is positive when it lies in
  a labelled window (both ends inclusive).
* event-wise: an event is *found* if any alarm falls inside its window (recall); an alarm
  run (consecutive alarmed rows) is *true* if it overlaps any window (precision).
* AUC-ROC and AUC-PR (average precision) of the raw scores, point-wise.
* mean detection delay: rows (and seconds) from an event's start to its first alarm, over
  found events.

Rows inside fault windows (``gap``, ``stale``: data problems, not market anomalies) are
dropped before anything is counted, and fault windows are not events.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InputError

__all__ = [
    "FAULT_KINDS",
    "evaluate_series",
    "event_metrics",
    "label_mask",
    "pointwise_metrics",
    "score_auc",
    "summarize",
]

FAULT_KINDS = ("gap", "stale")


def _prf(tp: float, n_pred: float, n_true: float) -> dict[str, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def _ns(times: pd.DatetimeIndex | pd.Series) -> np.ndarray:
    """UTC epoch nanoseconds (int64) of tz-aware times."""
    return pd.DatetimeIndex(times).as_unit("ns").asi8


def label_mask(index: pd.DatetimeIndex, windows: pd.DataFrame) -> np.ndarray:
    """True for rows of ``index`` inside any (start, end) window; ends inclusive."""
    mask = np.zeros(len(index), dtype=bool)
    if len(windows) == 0:
        return mask
    starts = np.searchsorted(_ns(index), _ns(windows["start"]), side="left")
    ends = np.searchsorted(_ns(index), _ns(windows["end"]), side="right")
    delta = np.zeros(len(index) + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, ends, -1)
    return np.cumsum(delta[:-1]) > 0


def pointwise_metrics(alarms: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 over rows. ``alarms``, ``truth``: bool arrays (n,)."""
    alarms, truth = np.asarray(alarms, bool), np.asarray(truth, bool)
    return _prf(float((alarms & truth).sum()), float(alarms.sum()), float(truth.sum()))


def _runs(alarms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (inclusive) positions of runs of True."""
    padded = np.concatenate([[False], alarms, [False]]).astype(np.int8)
    diff = np.diff(padded)
    return np.flatnonzero(diff == 1), np.flatnonzero(diff == -1) - 1


def event_metrics(index: pd.DatetimeIndex, alarms: np.ndarray, windows: pd.DataFrame) -> dict[str, Any]:
    """Event-wise precision/recall/F1 and detection delay for one series.

    Returns counts too (``events``, ``found``, ``alarm_runs``, ``true_runs``) so several
    series can be pooled by :func:`summarize`.
    """
    alarms = np.asarray(alarms, bool)
    idx = _ns(index)
    starts = np.searchsorted(idx, _ns(windows["start"]), side="left")
    ends = np.searchsorted(idx, _ns(windows["end"]), side="right")  # exclusive
    cum = np.concatenate([[0], np.cumsum(alarms)])
    in_window = (cum[ends] - cum[starts]) > 0
    has_rows = ends > starts
    alarm_pos = np.flatnonzero(alarms)
    hit_starts = starts[in_window]
    first = alarm_pos[np.searchsorted(alarm_pos, hit_starts)] if len(hit_starts) else hit_starts
    delays_rows = first - hit_starts
    delays_s = (idx[first] - idx[hit_starts]) / 1e9 if len(hit_starts) else np.zeros(0)
    r_start, r_end = _runs(alarms)
    mask = label_mask(index, windows)
    cum_mask = np.concatenate([[0], np.cumsum(mask)])
    true_runs = int(((cum_mask[r_end + 1] - cum_mask[r_start]) > 0).sum())
    n_events = int(has_rows.sum())
    found = int((in_window & has_rows).sum())
    return {
        "events": n_events,
        "found": found,
        "alarm_runs": len(r_start),
        "true_runs": true_runs,
        "delay_rows_sum": float(np.sum(delays_rows)),
        "delay_s_sum": float(np.sum(delays_s)),
    }


def score_auc(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """AUC-ROC and AUC-PR of scores (NaN rows dropped); NaN when only one class is present."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    scores, truth = np.asarray(scores, float), np.asarray(truth, bool)
    ok = np.isfinite(scores)
    s, t = scores[ok], truth[ok]
    if t.all() or not t.any():
        return {"auc_roc": float("nan"), "auc_pr": float("nan")}
    return {"auc_roc": float(roc_auc_score(t, s)), "auc_pr": float(average_precision_score(t, s))}


def _split_labels(labels: pd.DataFrame, exclude_kinds: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    if "kind" not in labels.columns:
        return labels, labels.iloc[:0]
    faults = labels["kind"].isin(exclude_kinds)
    return labels[~faults], labels[faults]


def evaluate_series(
    scores: pd.Series,
    alarms: pd.Series,
    labels: pd.DataFrame,
    *,
    exclude_kinds: Sequence[str] = FAULT_KINDS,
) -> dict[str, Any]:
    """Everything for one series: pooled counts plus the raw arrays :func:`summarize` needs.

    ``labels``: columns ``start, end`` (UTC timestamps) and optionally ``kind``. Rows in
    fault windows and rows with no score (warm-up) are dropped first.
    """
    events, faults = _split_labels(labels, exclude_kinds)
    keep = ~label_mask(scores.index, faults) & np.isfinite(scores.to_numpy(dtype=float))
    index = scores.index[keep]
    s = scores.to_numpy(dtype=float)[keep]
    a = alarms.to_numpy(dtype=bool)[keep]
    truth = label_mask(index, events)
    ev = event_metrics(index, a, events)
    return {**ev, "scores": s, "alarms": a, "truth": truth}


def summarize(parts: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Pool per-series results from :func:`evaluate_series` into one metric dict."""
    if not parts:
        raise InputError("nothing to evaluate: no scored rows")
    scores = np.concatenate([p["scores"] for p in parts])
    alarms = np.concatenate([p["alarms"] for p in parts])
    truth = np.concatenate([p["truth"] for p in parts])
    point = pointwise_metrics(alarms, truth)
    events = sum(p["events"] for p in parts)
    found = sum(p["found"] for p in parts)
    runs = sum(p["alarm_runs"] for p in parts)
    true_runs = sum(p["true_runs"] for p in parts)
    precision = true_runs / runs if runs else 0.0
    recall = found / events if events else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    out: dict[str, float] = {
        "point_precision": point["precision"],
        "point_recall": point["recall"],
        "point_f1": point["f1"],
        "event_precision": precision,
        "event_recall": recall,
        "event_f1": f1,
        **score_auc(scores, truth),
        "mean_delay_rows": sum(p["delay_rows_sum"] for p in parts) / found if found else float("nan"),
        "mean_delay_s": sum(p["delay_s_sum"] for p in parts) / found if found else float("nan"),
        "events": float(events),
        "found": float(found),
        "alarm_runs": float(runs),
        "rows": float(len(scores)),
    }
    return out
