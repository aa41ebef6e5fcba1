"""Alarms of a series that arrives a few bars at a time, equal to the alarms of the whole series.

The live cycle scores only the bars that closed since the last cycle. Two parts of the alarm rule
need more than those bars: a threshold policy that looks back over past scores
(``rolling_quantile``, ``likelihood``, ``dynamic``), which judged on a few bars alone would fall
back on its training history instead of following the live series, and incident suppression
(one alert per incident), which would alert again for an incident that spans two cycles.

An :class:`AlarmStream` carries, for one (detector, series), what the rule needs from the past:

* the last ``detector.alarm_lookback`` raw scores (the most a policy's value or threshold at a
  row reads back: ``window + short`` rows for ``likelihood``; none for ``static`` and
  ``k_sigma``), so a new row's threshold is computed on the scores the whole series would give it;
* the incident state of suppression (:class:`detectors.alarms.Incident`: how many rows ago the
  last kept alarm run started, and whether the last row fired and was kept);
* the alarms of the rows it has judged, back to a horizon the caller sets, so a caller that
  failed after judging can ask again for the same bars.

:meth:`AlarmStream.extend` judges rows that follow the ones seen so far; alarms of the pieces
are those of :func:`detectors.alarms.detector_alarms` over the whole series (to within the last
bit for ``dynamic``, whose EWMA is carried over a finite history). A stream that starts on a
series' tail (after a restart, or when the model changes) starts the policy and the incident
state there, as scoring that tail alone would. Memory: ``alarm_lookback`` floats per series.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from detectors.alarms import ALARM_COLUMNS, Incident, alarm_frame, suppress_from
from storage.models import SEVERITY_RANK, Severity

__all__ = ["AlarmStream"]


class AlarmStream:
    """The recent scores, incident state and alarms of one series under one detector (see the module)."""

    def __init__(self, token: Any = None) -> None:
        #: what the scores were made by (a model version): a different token means start again
        self.token = token
        self._scores = np.empty(0, dtype="float64")
        self._times = np.empty(0, dtype="int64")  # ns since the epoch, of the carried scores
        self._incident = Incident()
        self._alarms = pd.DataFrame(
            {"score": [], "threshold": [], "severity": []}, index=pd.DatetimeIndex([], tz="UTC")
        )

    @property
    def last(self) -> pd.Timestamp | None:
        """The time of the last row judged (None before the first)."""
        return pd.Timestamp(int(self._times[-1]), tz="UTC") if len(self._times) else None

    @property
    def incident(self) -> Incident:
        return self._incident

    def pending(self, index: pd.DatetimeIndex) -> int | None:
        """Rows of ``index`` after the last row judged, or None when the stream cannot continue on it.

        None: nothing judged yet, or ``index`` does not hold the carried rows where they were
        (the series moved past them, or rows were filled in between): start again on its tail.
        """
        if not len(self._times):
            return None
        stamps = index.asi8
        pos = int(np.searchsorted(stamps, self._times[-1]))
        if pos >= len(stamps) or stamps[pos] != self._times[-1]:
            return None
        k = min(len(self._times), pos + 1)
        if not np.array_equal(stamps[pos + 1 - k : pos + 1], self._times[len(self._times) - k :]):
            return None
        return len(stamps) - 1 - pos

    def extend(self, detector: Any, scores: pd.Series, *, threshold: float | None = None) -> pd.DataFrame:
        """Judge ``scores``, the rows that follow those seen so far; returns their alarms (all severities).

        ``threshold`` (a chat or config override) replaces the policy's threshold, as in
        :func:`detectors.alarms.detector_alarms`; the alarm value is still the policy's transform.
        """
        n = len(scores)
        if n == 0:
            return self._alarms.iloc[:0]
        new = scores.to_numpy(dtype="float64")
        times = np.concatenate([self._times, scores.index.asi8])
        full = pd.Series(np.concatenate([self._scores, new]), index=pd.DatetimeIndex(times, tz="UTC"), name="score")
        values = detector.alarm_values(full).to_numpy(dtype="float64")[len(full) - n :]
        if threshold is None:
            limits = detector.last_thresholds(full, n).to_numpy(dtype="float64")
        else:
            limits = np.full(n, float(threshold))
        with np.errstate(invalid="ignore"):
            hit = np.isfinite(values) & np.isfinite(limits) & (values > limits)
        kept, self._incident = suppress_from(hit, int(detector.suppress_rows), self._incident)
        fired = alarm_frame(scores.index, values, limits, kept, probability=bool(detector.probability_output))
        keep = max(int(detector.alarm_lookback), 1)  # at least the last row: where the next piece must start
        self._scores = full.to_numpy()[-keep:]
        self._times = times[-keep:]
        if len(fired):
            self._alarms = fired if self._alarms.empty else pd.concat([self._alarms, fired])
        return fired

    def pass_quiet(self, scores: pd.Series, keep: int = 1) -> None:
        """Take rows the caller knows raise nothing (every value at or below a constant threshold, the
        raw score compared): the incident state moves on without the rule's pandas work.

        For detectors whose ``alarm_lookback`` is 0 only (``keep`` carried rows, default 1).
        """
        n = len(scores)
        if n == 0:
            return
        age = None if self._incident.age is None else self._incident.age + n
        self._incident = Incident(age, 0)
        self._scores = np.concatenate([self._scores, scores.to_numpy(dtype="float64")])[-keep:]
        self._times = np.concatenate([self._times, scores.index.asi8])[-keep:]

    def alarms_since(self, since: pd.Timestamp | None, min_severity: Severity | str = Severity.LOW) -> pd.DataFrame:
        """The alarms judged at or after ``since`` (all kept ones when None), at or above ``min_severity``."""
        out = self._alarms if since is None else self._alarms[self._alarms.index >= since]
        floor = SEVERITY_RANK[Severity(min_severity).value]
        if floor and len(out):
            out = out[out["severity"].map(SEVERITY_RANK) >= floor]
        return out[ALARM_COLUMNS]

    def forget_before(self, when: pd.Timestamp) -> None:
        """Drop remembered alarms older than ``when`` (bounded memory; the incident state is kept)."""
        if len(self._alarms) and self._alarms.index[0] < when:
            self._alarms = self._alarms[self._alarms.index >= when]
