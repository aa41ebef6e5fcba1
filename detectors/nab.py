"""NAB scoring (Numenta Anomaly Benchmark) as pure functions over row indices; no I/O.

Follows NAB's published definition (Lavin & Ahmad 2015; numenta/NAB ``nab/sweeper.py``,
``config/profiles.json``, the ``normalize`` step of ``nab/runner.py``):

* **Windows.** Each labelled anomaly window covers the rows whose time lies in ``[start, end]``.
* **Probation.** The first ``min(floor(0.15 n), 0.15 * 5000)`` rows of a file are a learning
  period: detections there are not scored, a window entirely inside it is not counted.
* **Reward of a true positive.** Only the first detection in a window counts. At row ``i`` of a
  window whose last row is ``r`` and width ``w`` rows, its relative position is
  ``-(r - i + 1) / w`` (-1 at the first row, near 0 at the last) and it earns
  ``A_tp * S(position) / S(-1)`` with the scaled sigmoid ``S(x) = 2 / (1 + exp(5x)) - 1``
  (``S(x) = -1`` for ``x >= 3``). An early detection earns ~1, one at the end ~0.
* **Cost of a false positive.** A detection outside every window before any window costs
  ``-A_fp``. After a window it costs ``A_fp * S((i - r) / (w - 1))``: almost nothing just
  after the window's end (a late but real detection), the full ``-A_fp`` three window widths on.
* **Missed window.** ``-A_fn``.
* **Profiles.** ``standard`` (A_tp 1, A_fp 0.11, A_fn 1), ``reward_low_FP_rate`` (A_fp 0.22),
  ``reward_low_FN_rate`` (A_fn 2, A_fp 0.11).
* **Normalisation.** ``100 * (raw - null) / (perfect - null)`` over the corpus, where the null
  detector (never alarms) scores ``-A_fn`` per window and the perfect one ``A_tp`` per window:
  0 = no better than silence, 100 = every window found at its first row with no false alarm.
* **Optimised threshold.** NAB sweeps one threshold per detector and profile over the whole
  corpus and keeps the best total (detection = score >= threshold); :func:`sweep` computes the
  total for every distinct score at once.

Two further evaluation helpers that are not NAB's: :func:`alarm_starts` (one detection per
run of flagged rows, as the bot sends one alert per incident) and :func:`overlap_counts`
(window-level recall and precision with nearby alarms merged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "PROBATION_FRACTION",
    "PROFILES",
    "FileLayout",
    "FileScore",
    "NabProfile",
    "OverlapCounts",
    "alarm_starts",
    "file_layout",
    "file_score",
    "normalised",
    "overlap_counts",
    "overlap_f1",
    "probation_length",
    "row_credit",
    "scaled_sigmoid",
    "sweep",
    "window_rows",
]

PROBATION_FRACTION = 0.15
_PROBATION_CAP_ROWS = 5000  # NAB: probation is at most 15 % of 5,000 rows


@dataclass(frozen=True)
class NabProfile:
    """Weights of one NAB application profile."""

    tp: float
    fp: float
    fn: float


PROFILES: dict[str, NabProfile] = {
    "standard": NabProfile(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": NabProfile(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": NabProfile(tp=1.0, fp=0.11, fn=2.0),
}


def scaled_sigmoid(x: np.ndarray | float) -> np.ndarray:
    """NAB's ``2 * sigmoid(-5 x) - 1``, clamped to -1 from ``x >= 3``; +0.987 at -1, 0 at 0."""
    x = np.asarray(x, dtype="float64")
    with np.errstate(over="ignore"):
        out = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x >= 3.0, -1.0, out)


def probation_length(n_rows: int, fraction: float = PROBATION_FRACTION) -> int:
    """Rows at the start of a file that are not scored: ``min(floor(f n), f * 5000)``."""
    return int(min(math.floor(fraction * n_rows), fraction * _PROBATION_CAP_ROWS))


def window_rows(times: np.ndarray, windows: Sequence[tuple[object, object]]) -> np.ndarray:
    """Windows as row ranges: ``(k, 2)`` first and last row (inclusive) of each non-empty window.

    ``times``: sorted datetime64 (or int) per row, repeats allowed; ``windows``: ``(start, end)``
    pairs comparable with ``times``, both ends inclusive. Windows holding no row are dropped.
    """
    t = np.asarray(times)
    if len(windows) == 0:
        return np.empty((0, 2), dtype=np.int64)
    starts = np.array([w[0] for w in windows], dtype=t.dtype)
    ends = np.array([w[1] for w in windows], dtype=t.dtype)
    first = np.searchsorted(t, starts, side="left")
    last = np.searchsorted(t, ends, side="right") - 1
    keep = last >= first
    return np.stack([first[keep], last[keep]], axis=1).astype(np.int64)


@dataclass(frozen=True)
class FileLayout:
    """What NAB needs to know about one file: its length, windows (row ranges) and probation."""

    n_rows: int
    windows: np.ndarray  # (k, 2) first, last row (inclusive), sorted, non-overlapping
    probation: int

    @property
    def scored_windows(self) -> np.ndarray:
        """Windows with at least one row after probation (the ones that count)."""
        return self.windows[self.windows[:, 1] >= self.probation] if len(self.windows) else self.windows


def file_layout(
    n_rows: int, windows: np.ndarray | Sequence[tuple[int, int]], *, probation: int | None = None
) -> FileLayout:
    """A :class:`FileLayout`; ``windows`` as row ranges (see :func:`window_rows`)."""
    w = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
    if len(w):
        w = w[np.argsort(w[:, 0])]
        if (w[:, 1] < w[:, 0]).any() or (w[1:, 0] <= w[:-1, 1]).any() or w[0, 0] < 0 or w[-1, 1] >= n_rows:
            raise ValueError(f"windows must be sorted, disjoint row ranges inside 0..{n_rows - 1}: {w.tolist()}")
    return FileLayout(int(n_rows), w, probation_length(n_rows) if probation is None else int(probation))


def row_credit(layout: FileLayout, profile: NabProfile) -> tuple[np.ndarray, np.ndarray]:
    """What a detection at each row is worth, and the window it falls in.

    Returns ``(weight, window)``, both (n_rows,): ``weight`` is the reward of a first
    detection in a window (positive) or the cost of a false positive (negative);
    ``window`` is the window's position in ``layout.windows`` or -1 outside windows.
    Probation rows are not masked here (see :func:`file_score`).
    """
    n = layout.n_rows
    idx = np.arange(n)
    weight = np.full(n, -profile.fp)
    window = np.full(n, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    for k, (first, last) in enumerate(layout.windows):
        width = last - first + 1
        rows = idx[first : last + 1]
        weight[first : last + 1] = scaled_sigmoid(-(last - rows + 1) / width) * profile.tp / max_tp
        window[first : last + 1] = k
    if len(layout.windows):
        # Outside windows: the cost falls off after the closest preceding window's end.
        lasts = layout.windows[:, 1]
        widths = lasts - layout.windows[:, 0] + 1
        prev = np.searchsorted(lasts, idx, side="left") - 1  # last window ending before row i
        after = (window < 0) & (prev >= 0)
        p = prev[after]
        pos = (idx[after] - lasts[p]) / np.maximum(widths[p] - 1, 1)
        weight[after] = scaled_sigmoid(pos) * profile.fp
    return weight, window


@dataclass(frozen=True)
class FileScore:
    """NAB's raw score of one file and its counts (windows found/missed, false positives)."""

    score: float
    windows: int
    found: int
    false_positives: int


def file_score(detections: np.ndarray, layout: FileLayout, profile: NabProfile) -> FileScore:
    """Raw NAB score of boolean detections (n_rows,) on one file (probation rows ignored)."""
    det = np.asarray(detections, dtype=bool)
    if len(det) != layout.n_rows:
        raise ValueError(f"detections have {len(det)} rows, the file has {layout.n_rows}")
    weight, window = row_credit(layout, profile)
    scored = det & (np.arange(layout.n_rows) >= layout.probation)
    fp_rows = scored & (window < 0)
    total = float(weight[fp_rows].sum())
    counted = np.flatnonzero(layout.windows[:, 1] >= layout.probation) if len(layout.windows) else []
    found = 0
    for k in counted:
        hits = np.flatnonzero(scored & (window == k))
        if len(hits):
            total += float(weight[hits[0]])
            found += 1
        else:
            total -= profile.fn
    return FileScore(total, len(counted), found, int(fp_rows.sum()))


def normalised(raw: float, n_windows: int, profile: NabProfile) -> float:
    """NAB's 0 (null detector) .. 100 (perfect detector) scale for a raw score over ``n_windows``."""
    if n_windows == 0:
        return float("nan")
    null = -profile.fn * n_windows
    perfect = profile.tp * n_windows
    return 100.0 * (raw - null) / (perfect - null)


def sweep(
    scores: Sequence[np.ndarray], layouts: Sequence[FileLayout], profile: NabProfile
) -> tuple[np.ndarray, np.ndarray]:
    """Corpus raw score for every threshold at once (NAB's threshold optimisation).

    ``scores``: one anomaly-score array per file (NaN = no score, never a detection).
    Returns ``(thresholds, totals)``: distinct score values in decreasing order and the
    corpus raw score when every row with ``score >= threshold`` is a detection; element
    0 is ``+inf`` (no detection: the null detector's score). The best threshold is
    ``thresholds[argmax(totals)]``.
    """
    values, weights, wids = [], [], []
    n_windows = 0
    for s, layout in zip(scores, layouts, strict=True):
        s = np.asarray(s, dtype="float64")
        if len(s) != layout.n_rows:
            raise ValueError(f"scores have {len(s)} rows, the file has {layout.n_rows}")
        weight, window = row_credit(layout, profile)
        keep = (np.arange(layout.n_rows) >= layout.probation) & np.isfinite(s)
        counted = layout.windows[:, 1] >= layout.probation if len(layout.windows) else np.zeros(0, bool)
        gid = np.where(window >= 0, window + n_windows, -1)
        values.append(s[keep])
        weights.append(weight[keep])
        wids.append(gid[keep])
        n_windows += int(counted.sum())  # a window inside probation has no kept row and is not counted
    v = np.concatenate(values) if values else np.zeros(0)
    w = np.concatenate(weights) if weights else np.zeros(0)
    g = np.concatenate(wids) if wids else np.zeros(0, dtype=np.int64)
    order = np.argsort(-v, kind="stable")
    v, w, g = v[order], w[order], g[order]
    delta = np.where(g < 0, w, 0.0)  # every false positive adds its (negative) weight
    in_win = np.flatnonzero(g >= 0)
    if len(in_win):
        # A window is worth -A_fn until detected, then the best (earliest) weight seen so far.
        gw = g[in_win]
        ww = w[in_win]
        sort = np.lexsort((np.arange(len(gw)), gw))  # by window, then in sweep order
        gs, ws = gw[sort], ww[sort]
        starts = np.r_[True, gs[1:] != gs[:-1]]
        run_max = ws.copy()
        offsets = np.flatnonzero(starts)
        for a, b in zip(offsets, np.r_[offsets[1:], len(ws)], strict=True):  # one pass per window
            run_max[a:b] = np.maximum.accumulate(ws[a:b])
        prev = np.where(starts, -profile.fn, np.r_[-profile.fn, run_max[:-1]])
        gain = np.empty(len(gw))
        gain[sort] = run_max - prev
        delta[in_win] += gain
    totals = -profile.fn * n_windows + np.cumsum(delta)
    # Ties: a threshold admits every row with that score, so keep the total after the last of them.
    last_of_value = np.r_[v[1:] != v[:-1], True] if len(v) else np.zeros(0, bool)
    thresholds = np.r_[np.inf, v[last_of_value]]
    return thresholds, np.r_[-profile.fn * n_windows, totals[last_of_value]]


def alarm_starts(alarms: np.ndarray) -> np.ndarray:
    """One detection per incident: True at the first row of every run of flagged rows."""
    a = np.asarray(alarms, dtype=bool)
    out = a.copy()
    out[1:] &= ~a[:-1]
    return out


@dataclass(frozen=True)
class OverlapCounts:
    """Window-level counts: windows found, windows, merged alarms, merged alarms inside a window."""

    found: int
    windows: int
    alarms: int
    true_alarms: int

    def __add__(self, other: OverlapCounts) -> OverlapCounts:
        return OverlapCounts(
            self.found + other.found,
            self.windows + other.windows,
            self.alarms + other.alarms,
            self.true_alarms + other.true_alarms,
        )


def overlap_counts(alarms: np.ndarray, layout: FileLayout, *, merge: int = 48) -> OverlapCounts:
    """Found windows and merged alarms after probation.

    A window is found when an alarmed row falls inside it. Alarmed rows at most ``merge``
    rows apart form one merged alarm; a merged alarm with no row inside any window is a
    false positive.
    """
    a = np.asarray(alarms, dtype=bool).copy()
    a[: layout.probation] = False
    rows = np.flatnonzero(a)
    _, window = row_credit(layout, PROFILES["standard"])
    counted = np.flatnonzero(layout.windows[:, 1] >= layout.probation) if len(layout.windows) else np.zeros(0, int)
    hit = set(window[rows][window[rows] >= 0].tolist())
    found = sum(1 for k in counted if k in hit)
    if len(rows) == 0:
        return OverlapCounts(found, len(counted), 0, 0)
    group = np.cumsum(np.r_[True, np.diff(rows) > merge]) - 1
    inside = np.zeros(group[-1] + 1, dtype=bool)
    np.logical_or.at(inside, group, window[rows] >= 0)
    return OverlapCounts(found, len(counted), int(len(inside)), int(inside.sum()))


def overlap_f1(counts: OverlapCounts) -> tuple[float, float, float]:
    """(precision, recall, F1) of pooled :class:`OverlapCounts`; 0 where undefined."""
    precision = counts.true_alarms / counts.alarms if counts.alarms else 0.0
    recall = counts.found / counts.windows if counts.windows else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1
