"""Causal within-event "how unusual is this minute for this coin" features of La Morgia chunk rows.

The 60 s La Morgia features are trailing aggregates over many chunks: they move smoothly and a
pump minute only makes them *step* (``avg_rush_order`` by one rush order over the window,
``std_trades`` by far more than its usual minute-to-minute change). Their levels differ by
orders of magnitude between coins, so the network is given, per feature, the step and the level
measured against the event's own history of *previous* rows: nothing at or after the scored row
enters its reference statistics, and nothing depends on the row's position in the event or on
the event's length.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CHANGE_KINDS", "RELATIVE_KINDS", "event_change_features", "event_relative_features", "signed_log"]

#: The per-column features, in output order (each block has one column per input column).
RELATIVE_KINDS = ["step_z", "level_log", "level_z"]
#: The per-column blocks of ``event_change_features``, in output order.
CHANGE_KINDS = ["step_rel", "step_vs_max", "step_rank", "level_rank"]
_TINY = 1e-12


def signed_log(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: keeps the sign and order, tames heavy tails (shape unchanged)."""
    return np.sign(x) * np.log1p(np.abs(x))


def _previous_expanding(frame: pd.DataFrame, groups: np.ndarray, how: str) -> np.ndarray:
    """Per group, the expanding ``how`` ("median"/"mean") of the rows strictly before each row (NaN on the first)."""
    grouped = frame.groupby(groups, sort=False)
    stat = getattr(grouped.expanding(), how)().reset_index(level=0, drop=True).sort_index()
    return stat.groupby(groups, sort=False).shift(1).to_numpy(dtype=float)


def _event_previous(values: np.ndarray, groups: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """``values`` as a frame, each row's previous row in its event (NaN on its first row), first-row mask."""
    frame = pd.DataFrame(values, index=pd.RangeIndex(len(values)))
    first = np.r_[True, groups[1:] != groups[:-1]]
    return frame, frame.groupby(groups, sort=False).shift(1).to_numpy(), first


def event_relative_features(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per row and column: step and level against the row's event history of previous rows only.

    With ``d_t = x_t - x_{t-1}`` (0 on an event's first row), ``s`` the mean ``|d|`` of the
    event's earlier steps and ``m`` the median of its earlier levels:

    * ``step_z``  = signed_log(d_t / s): this minute's step in units of the usual step;
    * ``level_log`` = log((x_t + e) / (m + e)), ``e = |m| / 100``: level against the usual level;
    * ``level_z`` = signed_log((x_t - m) / s): distance from the usual level in usual steps.

    ``s`` falls back to ``1e-4 |m|`` while the event has not moved yet (so its first move stands
    out); without an earlier step (an event's first two rows) ``step_z`` and ``level_z`` are 0, and
    an event's first row is all zeros. Only rows ``<= t`` of the same event are used.

    Parameters
    ----------
    values : ndarray, shape (n_rows, n_cols), rows of a group consecutive and in time order
    groups : ndarray, shape (n_rows,), event ids

    Returns
    -------
    ndarray of float32, shape (n_rows, 3 * n_cols): blocks ``RELATIVE_KINDS`` in order, each with the
    input columns in order.
    """
    values = np.asarray(values, dtype=float)
    n, k = values.shape
    if n == 0:
        return np.zeros((0, len(RELATIVE_KINDS) * k), dtype=np.float32)
    groups = np.asarray(groups)
    frame, prev, first = _event_previous(values, groups)
    d = np.nan_to_num(values - prev, nan=0.0)
    abs_step = pd.DataFrame(np.where(first[:, None], np.nan, np.abs(d)), index=frame.index)  # first row: no step
    usual_step = _previous_expanding(abs_step, groups, "mean")
    usual_level = _previous_expanding(frame, groups, "median")
    x = values
    m = usual_level
    fallback = 1e-4 * np.abs(m)
    # no earlier step (an event's first two rows): NaN, so the step and distance features are 0
    s = np.where(usual_step > 0, usual_step, np.where(fallback > 0, fallback, _TINY))
    s = np.where(np.isnan(usual_step), np.nan, s)
    e = np.where(np.abs(m) > 0, np.abs(m) / 100.0, _TINY)
    with np.errstate(divide="ignore", invalid="ignore"):
        step_z = signed_log(d / s)
        level_log = np.log((np.abs(x) + e) / (np.abs(m) + e))
        level_z = signed_log((x - m) / s)
    out = np.concatenate([step_z, level_log, level_z], axis=1)
    return np.clip(np.nan_to_num(out, nan=0.0, posinf=20.0, neginf=-20.0), -20.0, 20.0).astype(np.float32)


def _expanding_rank(frame: pd.DataFrame, groups: np.ndarray) -> np.ndarray:
    """Per group, the percentile rank (0-1] of each row among the group's rows up to and including it."""
    ranked = frame.groupby(groups, sort=False).expanding().rank(pct=True)
    return ranked.reset_index(level=0, drop=True).sort_index().to_numpy(dtype=float)


def event_change_features(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per row and column: this minute's change, relative and ranked against the event's earlier rows.

    Why: the pooled scale of ``step_z`` varies between coins with how jumpy their trailing
    aggregates are; a tree model found ranks and relative changes far more telling than raw
    levels, and they cost nothing to compute. With ``d_t = x_t - x_{t-1}``:

    * ``step_rel``    = signed_log(1000 d_t / |x_{t-1}|): the change in per mille of the previous level
      (for ``avg_price_max`` this is the naive price-jump rule, in log form);
    * ``step_vs_max`` = signed_log(d_t / max earlier |d|): this step against the largest one so far;
    * ``step_rank``   = percentile of ``d_t`` among the event's steps so far (this one included);
    * ``level_rank``  = percentile of ``x_t`` among the event's levels so far (this one included).

    Undefined values (an event's first row or two, a zero divisor) are neutral: 0 for the
    signed logs, 0.5 for the ranks. Only rows ``<= t`` of the same event are used.

    Takes ``values`` and ``groups`` as ``event_relative_features`` does; returns float32 of shape
    (n_rows, 4 * n_cols), the blocks ``CHANGE_KINDS`` in order.
    """
    values = np.asarray(values, dtype=float)
    n, k = values.shape
    if n == 0:
        return np.zeros((0, len(CHANGE_KINDS) * k), dtype=np.float32)
    groups = np.asarray(groups)
    frame, prev, first = _event_previous(values, groups)
    d = values - prev  # NaN on an event's first row
    abs_step = pd.DataFrame(np.abs(d), index=frame.index)
    largest_before = abs_step.groupby(groups, sort=False).cummax().groupby(groups, sort=False).shift(1).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        step_rel = signed_log(1e3 * d / np.abs(prev))
        step_vs_max = signed_log(d / largest_before)
    signed = np.nan_to_num(np.concatenate([step_rel, step_vs_max], axis=1), nan=0.0, posinf=20.0, neginf=-20.0)
    steps = pd.DataFrame(np.where(first[:, None], 0.0, d), index=frame.index)
    ranks = np.concatenate([_expanding_rank(steps, groups), _expanding_rank(frame, groups)], axis=1)
    out = np.concatenate([np.clip(signed, -20.0, 20.0), np.nan_to_num(ranks, nan=0.5)], axis=1)
    return out.astype(np.float32)
