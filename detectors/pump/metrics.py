"""Pure metrics and threshold choice for pump detection (row-wise and event-wise).

The threshold is picked by ``best_f1_threshold`` on scores of *training* events only (a
validation share of them, split by event); evaluation reuses it unchanged.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "best_event_f1_threshold",
    "best_f1_threshold",
    "event_detection",
    "event_f1",
    "event_hit_rate",
    "event_folds",
    "event_split",
    "pump_metrics",
]


def best_f1_threshold(y: np.ndarray, scores: np.ndarray) -> float:
    """Threshold maximizing F1 of ``scores >= t`` against labels ``y`` (both shape (n,)).

    Ties go to the highest threshold (fewest alarms). Without positives returns the max score
    plus a margin, so nothing on similar data fires.
    """
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=float)
    if not y.any() or len(scores) == 0:
        return float(np.nanmax(scores) + 1e-6) if len(scores) else 0.5
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y[order]
    tp = np.cumsum(t)
    fp = np.cumsum(~t)
    last_of_value = np.r_[s[1:] != s[:-1], True]
    precision = tp / (tp + fp)
    recall = tp / t.sum()
    f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall + 1e-12), 0.0)
    f1 = np.where(last_of_value, f1, -1.0)
    best = int(np.argmax(f1))
    return float(s[best])


def event_split(events: np.ndarray, share: float, seed: int) -> np.ndarray:
    """Boolean mask (shape of ``events``): True for rows of a seeded ``share`` of the distinct events."""
    unique = np.unique(events)
    rng = np.random.default_rng(seed)
    n_pick = int(round(share * len(unique)))
    n_pick = min(max(n_pick, 1), max(len(unique) - 1, 1))
    picked = rng.choice(unique, size=n_pick, replace=False)
    return np.isin(events, picked)


def event_folds(events: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id 0..k-1 per row (shape of ``events``): the distinct events dealt at random into ``k`` folds.

    Whole events stay together; fold sizes differ by at most one event.
    """
    unique = np.unique(events)
    if len(unique) < k:
        raise ValueError(f"event_folds: {len(unique)} events cannot fill {k} folds")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of = np.empty(len(unique), dtype=np.int64)
    fold_of[order] = np.arange(len(unique)) % k
    return fold_of[np.searchsorted(unique, events)]


def event_hit_rate(events: np.ndarray, y: np.ndarray, scores: np.ndarray) -> float:
    """Share of events (with a positive row) whose highest-scored row lies within one row of a ``y=1`` row.

    Rows of one event are consecutive in ``events``; "within one row" is by position in the event.
    """
    events = np.asarray(events)
    y = np.asarray(y).astype(bool)
    scores = np.asarray(scores, dtype=float)
    hits = total = 0
    starts = np.flatnonzero(np.r_[True, events[1:] != events[:-1]])
    ends = np.r_[starts[1:], len(events)]
    for a, b in zip(starts, ends, strict=True):
        pos = np.flatnonzero(y[a:b])
        if len(pos) == 0:
            continue
        total += 1
        top = int(np.nanargmax(scores[a:b]))
        hits += int(np.min(np.abs(pos - top)) <= 1)
    return hits / total if total else float("nan")


def pump_metrics(events: np.ndarray, y: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """``precision, recall, f1`` at ``threshold``, ``auc_roc``, ``auc_pr`` (average precision), ``event_hit_rate``."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    y = np.asarray(y).astype(int)
    scores = np.asarray(scores, dtype=float)
    pred = (scores >= threshold).astype(int)
    precision, recall, f1, _ = precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    both = len(np.unique(y)) == 2
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "auc_roc": float(roc_auc_score(y, scores)) if both else float("nan"),
        "auc_pr": float(average_precision_score(y, scores)) if both else float("nan"),
        "event_hit_rate": float(event_hit_rate(np.asarray(events), y, scores)),
    }


def event_detection(alarms: np.ndarray, pumps: list[tuple[int, int, int]]) -> dict[str, int]:
    """Event-wise counts for one symbol's alarm series.

    Parameters
    ----------
    alarms : ndarray of bool, shape (n_bars,)
    pumps : (start, peak, end) bar positions of every pump, inclusive

    Returns
    -------
    ``tp`` pumps with an alarm in [start, peak] (detected no later than the price peak),
    ``late`` pumps whose first alarm came after the peak, ``fn`` pumps not detected in time,
    ``fp`` alarm episodes (runs of consecutive alarms) touching no pump's [start, end],
    ``episodes`` all alarm episodes.
    """
    alarms = np.asarray(alarms, dtype=bool)
    covered = np.zeros(len(alarms), dtype=bool)
    tp = late = 0
    for start, peak, end in pumps:
        covered[start : end + 1] = True
        if alarms[start : peak + 1].any():
            tp += 1
        elif alarms[peak + 1 : end + 1].any():
            late += 1
    starts = np.flatnonzero(alarms & ~np.r_[False, alarms[:-1]])
    ends = np.flatnonzero(alarms & ~np.r_[alarms[1:], False])
    touching = np.array([covered[a : b + 1].any() for a, b in zip(starts, ends, strict=True)], dtype=bool)
    return {
        "tp": tp,
        "late": late,
        "fn": len(pumps) - tp,
        "fp": int((~touching).sum()),
        "episodes": len(starts),
    }


def event_f1(alarms: np.ndarray, y: np.ndarray, groups: np.ndarray, beta: float = 1.0) -> float:
    """Event-wise F1: a run of consecutive ``y=1`` rows is caught when an alarm falls inside it;
    an alarm episode (consecutive alarms) with no ``y=1`` row is a false positive.

    Parameters
    ----------
    alarms, y : ndarray of bool, shape (n,)
    groups : ndarray, shape (n,); runs and episodes never continue across a group change
    beta : F-beta weight of recall (1: F1)
    """
    alarms, y = np.asarray(alarms, dtype=bool), np.asarray(y, dtype=bool)
    new = np.r_[True, groups[1:] != groups[:-1]]
    a_start = alarms & ~(np.r_[False, alarms[:-1]] & ~new)
    y_start = y & ~(np.r_[False, y[:-1]] & ~new)
    episodes, runs = int(a_start.sum()), int(y_start.sum())
    if episodes == 0 or runs == 0:
        return 0.0
    hit = alarms & y
    true_episodes = len(np.unique(np.cumsum(a_start)[hit]))
    caught = len(np.unique(np.cumsum(y_start)[hit]))
    precision, recall = true_episodes / episodes, caught / runs
    b2 = beta * beta
    return (1 + b2) * precision * recall / (b2 * precision + recall) if precision + recall else 0.0


def best_event_f1_threshold(
    y: np.ndarray, scores: np.ndarray, groups: np.ndarray, candidates: int = 2000, beta: float = 1.0
) -> float:
    """Threshold maximizing ``event_f1`` (F-beta) over the ``candidates`` highest scores (and coarser quantiles below).

    When several thresholds tie (a plateau), the middle one is taken, leaving a margin both ways.
    """
    scores = np.asarray(scores, dtype=float)
    if not np.asarray(y).any():
        return best_f1_threshold(y, scores)
    top = np.sort(scores)[-candidates:]  # every distinct score of the highest `candidates` rows
    grid = np.unique(np.r_[top, np.quantile(scores, np.linspace(0.5, 1.0, 64))])
    f1 = np.array([event_f1(scores >= t, y, groups, beta) for t in grid])
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(grid[best[len(best) // 2]])  # middle of the best plateau: margin on both sides
