"""Scores and thresholds to alarms with a severity: the one rule every path shares.

A detector says how strange each bar is; this module says which bars are
alarms and how serious each one is. The live cycle, the demo and the
walk-forward backtest all call :func:`detector_alarms`, so a backtest trades
exactly the alarms a user would have been sent.

The rule:

* the value compared is the detector's *alarm value* (its threshold policy's
  transform of the raw score: the raw score itself, or telemanom's smoothed
  error under the ``dynamic`` policy);
* a bar fires when that value is strictly above its threshold; NaN (warm-up)
  never fires;
* severity is how far the value clears the threshold: under 1.5x is low,
  under 3x medium, beyond that high. It is relative, so one rule serves
  detectors whose scores live on different scales. A detector whose scores
  are probabilities (``probability_output``) is judged on that scale instead
  (0.5 medium, 0.8 high), since a tuned threshold can be far below 0.5 and a
  ratio to it would call every hit high.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from storage.models import SEVERITY_RANK, Severity

__all__ = [
    "ALARM_COLUMNS",
    "HIGH_RATIO",
    "Incident",
    "MEDIUM_RATIO",
    "Thresholded",
    "alarm_frame",
    "alarms",
    "detector_alarms",
    "fires",
    "severity_for",
    "suppress_from",
    "suppress_repeats",
]

MEDIUM_RATIO = 1.5
HIGH_RATIO = 3.0
_PROBABILITY_MEDIUM = 0.5
_PROBABILITY_HIGH = 0.8
ALARM_COLUMNS = ["score", "threshold", "severity"]


class Thresholded(Protocol):
    """What the rule needs of a detector (every ``detectors.base.Detector`` has it)."""

    probability_output: bool

    def alarm_values(self, scores: pd.Series) -> pd.Series: ...

    def thresholds(self, scores: pd.Series) -> pd.Series: ...


def fires(values: pd.Series, thresholds: pd.Series | float) -> pd.Series:
    """Boolean per bar: ``value > threshold``, False where either is NaN."""
    thr = _align(values, thresholds)
    return (values.notna() & thr.notna() & (values > thr)).astype(bool)


@dataclass(frozen=True)
class Incident:
    """Where suppression stands after some rows: what the next rows' alarms depend on from the past.

    ``age``: rows from the start of the last kept alarm run to the next row (None: no run kept
    yet); ``tail``: the last row fired and was kept (1), fired and was dropped (-1), did not fire (0).
    """

    age: int | None = None
    tail: int = 0


def suppress_from(hit: np.ndarray, rows: int, before: Incident | None = None) -> tuple[np.ndarray, Incident]:
    """:func:`suppress_repeats` on boolean ``hit`` continuing after rows summed up by ``before``.

    A run that starts within ``rows`` rows of the previous kept run's start is dropped; a run
    that continues the previous rows' run is kept or dropped with it. Returns the kept rows and
    the incident state after them, so a series cut into pieces gets exactly the alarms of the
    whole series. Loops over run starts, not rows; ``rows`` <= 0 keeps every run.
    """
    a = np.asarray(hit, dtype=bool)
    state = before or Incident()
    n = len(a)
    if n == 0:
        return a.copy(), state
    if rows <= 0:  # nothing is suppressed: no incident to remember
        return a.copy(), Incident(None, int(a[-1]))
    last = None if state.age is None else -state.age  # start of the last kept run, relative to row 0
    out = np.zeros_like(a)
    if a.any():
        edges = np.diff(np.concatenate([[0], a.astype(np.int8), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # ends exclusive
        for s, e in zip(starts, ends, strict=True):
            if s == 0 and state.tail:  # the run of the previous rows goes on
                keep = state.tail > 0
            else:
                keep = last is None or s - last > rows
                last = s if keep else last
            out[s:e] = keep
    tail = 0 if not a[-1] else (1 if out[-1] else -1)
    return out, Incident(None if last is None else n - last, tail)


def suppress_repeats(hit: pd.Series, rows: int) -> pd.Series:
    """``hit`` less every alarm run that starts within ``rows`` rows of the previous kept run's start.

    One incident, one alert (Merlion's alarm suppression). Causal: whether a run is kept
    depends on earlier alarms only. Loops over run starts, not rows; ``rows`` <= 0: unchanged.
    """
    a = hit.to_numpy(dtype=bool)
    if rows <= 0 or not a.any():
        return hit
    out, _ = suppress_from(a, rows)
    return pd.Series(out, index=hit.index, name=hit.name)


def _align(values: pd.Series, thresholds: pd.Series | float) -> pd.Series:
    if isinstance(thresholds, pd.Series):
        if thresholds.index.equals(values.index):  # also with repeated timestamps (a DST hour)
            return thresholds.astype("float64")
        return thresholds.reindex(values.index).astype("float64")
    return pd.Series(float(thresholds), index=values.index, dtype="float64")


def _severities(values: np.ndarray, thresholds: np.ndarray, probability: bool) -> np.ndarray:
    if probability:
        return np.where(
            values >= _PROBABILITY_HIGH,
            Severity.HIGH.value,
            np.where(values >= _PROBABILITY_MEDIUM, Severity.MEDIUM.value, Severity.LOW.value),
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        # thresholds at or below zero: fall back to the absolute margin
        ratio = np.where(thresholds > 0, values / np.where(thresholds > 0, thresholds, 1.0), 1.0 + values - thresholds)
    return np.where(
        ratio >= HIGH_RATIO,
        Severity.HIGH.value,
        np.where(ratio >= MEDIUM_RATIO, Severity.MEDIUM.value, Severity.LOW.value),
    )


def severity_for(value: float, threshold: float, *, probability: bool = False) -> Severity:
    """Severity of one value that cleared ``threshold`` (the scalar form of the rule)."""
    out = _severities(np.array([value], dtype="float64"), np.array([threshold], dtype="float64"), probability)
    return Severity(str(out[0]))


def alarms(
    values: pd.Series,
    thresholds: pd.Series | float,
    *,
    probability: bool = False,
    min_severity: Severity | str = Severity.LOW,
    suppress: int = 0,
) -> pd.DataFrame:
    """The bars that fire, with ``score`` (the compared value), ``threshold`` and ``severity``.

    Parameters
    ----------
    values : Series (n,)
        Alarm values indexed by bar open time.
    thresholds : Series (n,) or float
        Threshold per bar (aligned on the index) or one value for all.
    probability : bool
        Judge severity on the probability scale.
    min_severity : Severity or str
        Alarms below it are dropped.
    suppress : int
        Rows after an alarm run's start in which a new run is dropped (:func:`suppress_repeats`).

    Returns
    -------
    DataFrame
        Indexed by the firing bars (a subset of ``values.index``), columns ``ALARM_COLUMNS``.
    """
    thr = _align(values, thresholds)
    hit = suppress_repeats(fires(values, thr), suppress).to_numpy()
    return alarm_frame(
        values.index,
        values.to_numpy(dtype="float64"),
        thr.to_numpy(dtype="float64"),
        hit,
        probability=probability,
        min_severity=min_severity,
    )


def alarm_frame(
    index: pd.Index,
    values: np.ndarray,
    thresholds: np.ndarray,
    kept: np.ndarray,
    *,
    probability: bool = False,
    min_severity: Severity | str = Severity.LOW,
) -> pd.DataFrame:
    """The rows of ``index`` flagged in ``kept`` as alarms (``ALARM_COLUMNS``), at or above ``min_severity``."""
    v = values[kept]
    t = thresholds[kept]
    severity = _severities(v, t, probability)
    out = pd.DataFrame({"score": v, "threshold": t, "severity": severity}, index=index[kept])
    floor = SEVERITY_RANK[Severity(min_severity).value]
    if floor:
        out = out[out["severity"].map(SEVERITY_RANK) >= floor]
    return out


def detector_alarms(
    detector: Thresholded,
    scores: pd.Series,
    *,
    threshold: float | None = None,
    min_severity: Severity | str = Severity.LOW,
) -> pd.DataFrame:
    """:func:`alarms` for ``detector``'s raw ``scores``, at its own threshold or an override.

    ``threshold`` (a chat or config override) replaces the detector's threshold
    policy but not its alarm value: a smoothed error is still what is compared.
    """
    values = detector.alarm_values(scores)
    limit: pd.Series | float = detector.thresholds(scores) if threshold is None else float(threshold)
    suppress = int(getattr(detector, "suppress_rows", 0))
    return alarms(values, limit, probability=detector.probability_output, min_severity=min_severity, suppress=suppress)
