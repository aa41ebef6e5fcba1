"""Where a candle pump detector's alarms land on a labelled (synthetic) market: pure helpers.

``event_detection`` (``pump_metrics``) says how many alarm episodes touch no pump; these
helpers say *what* they touched instead (another planted kind, a data fault, the tail of a
pump, or nothing), and how early each pump was caught relative to its first price-spike bar.
The benchmark (``bench/synthetic_pump_dump.py``) and the quality test use them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["alarm_episodes", "false_alarm_kinds", "first_alarm_offsets", "pump_spans", "spike_bar"]


def pump_spans(frame: pd.DataFrame, labels: pd.DataFrame, symbol: str) -> list[tuple[int, int, int]]:
    """(start, peak, end) bar positions of ``symbol``'s ``pump_dump`` labels in ``frame``.

    ``peak`` is the bar with the highest high inside the label (where the target "pump now"
    ends, see ``detectors.pump.labels.pump_rows``). Labels falling entirely into a gap of ``frame`` are skipped.
    """
    rows = labels[(labels["symbol"] == symbol) & (labels["kind"] == "pump_dump")]
    index = pd.DatetimeIndex(frame.index)
    high = frame["high"].to_numpy(dtype=float)
    spans = []
    for start, end in zip(pd.to_datetime(rows["start"], utc=True), pd.to_datetime(rows["end"], utc=True), strict=True):
        a, b = int(index.searchsorted(start)), int(index.searchsorted(end, side="right")) - 1
        if a > b:
            continue
        spans.append((a, a + int(np.argmax(high[a : b + 1])), b))
    return spans


def spike_bar(close: np.ndarray, start: int, peak: int) -> int:
    """First bar of the price spike of a pump spanning ``start .. peak``: the first bar whose
    close-to-close log return is at least a quarter of the whole rise to ``close[peak]``.

    The lead bars before it carry the social burst but ordinary returns; a pump rises over at
    most four bars, so every rising bar clears a quarter of the total. Falls back to ``peak``.
    """
    base = close[start - 1] if start > 0 else close[start]
    rise = np.log(close[peak] / base)
    if not np.isfinite(rise) or rise <= 0:
        return peak
    ret = np.diff(np.log(close[max(start - 1, 0) : peak + 1]))
    if start == 0:
        ret = np.r_[0.0, ret]
    hits = np.flatnonzero(ret >= rise / 4)
    return start + int(hits[0]) if len(hits) else peak


def alarm_episodes(alarms: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) bar positions of every run of consecutive alarms, shape-agnostic bool input."""
    alarms = np.asarray(alarms, dtype=bool)
    starts = np.flatnonzero(alarms & ~np.r_[False, alarms[:-1]])
    ends = np.flatnonzero(alarms & ~np.r_[alarms[1:], False])
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def false_alarm_kinds(
    alarms: np.ndarray,
    index: pd.DatetimeIndex,
    labels: pd.DataFrame,
    spans: list[tuple[int, int, int]],
    *,
    tail: pd.Timedelta,
) -> list[str]:
    """What each false alarm episode (one touching no pump's ``start .. end``) overlaps.

    An episode is put on a label when it overlaps ``[label start - tail, label end + tail]``
    (a pump's label then reads ``"after_pump"``: the dump tail), else it is ``"noise"``.

    Parameters
    ----------
    alarms : ndarray of bool, shape (n_bars,)
    index : bar open times of the symbol's frame, shape (n_bars,) (gaps in the frame are fine)
    labels : that symbol's labels, ``start, end, kind``
    spans : the symbol's pumps as ``pump_spans`` returns them
    tail : how far from a label an episode still counts as caused by it

    Returns
    -------
    list of str, one per false alarm episode, in time order
    """
    covered = np.zeros(len(alarms), dtype=bool)
    for start, _peak, end in spans:
        covered[start : end + 1] = True

    def _ns(times: pd.Series | pd.DatetimeIndex) -> np.ndarray:
        return pd.DatetimeIndex(pd.to_datetime(times, utc=True)).as_unit("ns").asi8

    starts, ends, bars = _ns(labels["start"]), _ns(labels["end"]), _ns(index)
    kinds = labels["kind"].to_numpy()
    margin = int(tail / pd.Timedelta(1, "ns"))
    out = []
    for a, b in alarm_episodes(alarms):
        if covered[a : b + 1].any():
            continue
        near = (starts - margin <= bars[b]) & (ends + margin >= bars[a])
        if not near.any():
            out.append("noise")
            continue
        kind = str(kinds[np.flatnonzero(near)[0]])
        out.append("after_pump" if kind == "pump_dump" else kind)
    return out


def first_alarm_offsets(alarms: np.ndarray, close: np.ndarray, spans: list[tuple[int, int, int]]) -> list[int]:
    """For every pump caught by its peak, first alarm bar minus its ``spike_bar`` (< 0: during the lead-up)."""
    alarms = np.asarray(alarms, dtype=bool)
    out = []
    for start, peak, _end in spans:
        hit = np.flatnonzero(alarms[start : peak + 1])
        if len(hit):
            out.append(start + int(hit[0]) - spike_bar(close, start, peak))
    return out
