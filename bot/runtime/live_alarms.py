"""The live cycle's alarms: one batched model call per detector, judged as over the whole series.

Each cycle scores only the bars that closed since the last one. Alarms that depend on past
scores (a rolling threshold policy such as ``likelihood``, incident suppression) are judged by
one :class:`detectors.alarm_stream.AlarmStream` per (detector, timeframe, symbol), which carries
the recent scores and the incident state from cycle to cycle, so a live alarm is the alarm
``vigil score`` or a walk-forward backtest raises on the same scores.

A stream starts (or starts again) on the tail of the symbol's frame: at the first cycle of a
process (after a restart), for a symbol new to the watchlist, when the detector's model changes
(a retrain swaps in scores on another scale), or when the frame no longer holds the rows the
stream carries. Starting means scoring ``alarm_lookback + 2 * suppress_rows`` rows more than the
cycle needs, so the policy and the incident state start from real scores of the past. All of it
rides in the cycle's one ``score_batch`` call: its ``last_n`` is the most rows any symbol needs
(at most what the shortest frame allows past the warm-up); a cycle whose symbols are all up to
date makes no model call at all. The alarms of the bars at or after ``since`` are returned, also
when they were judged by an earlier cycle that failed before storing them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from detectors.alarm_stream import AlarmStream
from storage.models import Severity
from storage.thresholds import Resolved

__all__ = ["LiveAlarms"]

_EMPTY = pd.Series(dtype="float64")


class LiveAlarms:
    """Alarm streams per (detector, timeframe, ``exchange:symbol``) and the batched scoring that feeds them."""

    def __init__(self) -> None:
        self._streams: dict[tuple[str, str], dict[str, AlarmStream]] = {}
        self._lock = threading.Lock()  # cycles of different timeframes run in worker threads at once

    def streams(self, name: str, timeframe: str) -> dict[str, AlarmStream]:
        with self._lock:
            return self._streams.setdefault((name, timeframe), {})

    def judge(
        self,
        name: str,
        timeframe: str,
        detector: Any,
        token: Any,
        frames: Mapping[str, pd.DataFrame],
        *,
        last_n: int,
        since: pd.Timestamp | None,
        override: Callable[[str], Resolved],
        min_severity: Severity | str = Severity.LOW,
    ) -> dict[str, pd.DataFrame]:
        """Score what every symbol needs in one ``score_batch`` call; alarms at or after ``since`` per key.

        ``token`` names the model that scores (its version): a stream made by another starts again.
        ``override(symbol)`` gives the symbol's threshold override and switch (a switched-off symbol
        is still followed, so its incident state stays true, but raises nothing).
        """
        streams = self.streams(name, timeframe)
        for gone in set(streams) - set(frames):
            del streams[gone]  # off the watchlist: forget it
        if not frames:
            return {}
        need: dict[str, int | None] = {}
        for key, frame in frames.items():
            stream = streams.get(key)
            need[key] = stream.pending(frame.index) if stream is not None and stream.token == token else None
        start_rows = int(detector.alarm_lookback) + 2 * int(detector.suppress_rows) + last_n
        want = max((start_rows if n is None else n) for n in need.values())
        batch: dict[str, pd.Series] = {}
        if want > 0:
            room = min(len(f) for f in frames.values()) - int(detector.warmup)
            batch = detector.score_batch(frames, last_n=max(last_n, min(want, room)))
        # A fixed level on the raw score with nothing to look back on: rows that cannot fire skip the
        # rule's pandas work (a few hundred microseconds a symbol, most of the stage at 500 symbols).
        constant = detector.constant_threshold() if int(detector.alarm_lookback) == 0 else None
        out: dict[str, pd.DataFrame] = {}
        for key, frame in frames.items():
            n = need[key]
            resolved = override(key.partition(":")[2])
            if n is None or (n > 0 and n > len(batch[key])):  # start (again) on what was scored
                streams[key] = stream = AlarmStream(token)
                new = batch[key]
            else:
                stream = streams[key]
                new = batch[key].iloc[len(batch[key]) - n :] if n > 0 else batch.get(key, _EMPTY).iloc[:0]
            if len(new):
                limit = None if constant is None else constant if resolved.threshold is None else resolved.threshold
                if limit is not None and not (new.to_numpy(dtype="float64") > limit).any():  # NaN never fires
                    stream.pass_quiet(new)
                else:
                    stream.extend(detector, new, threshold=resolved.threshold)
            stream.forget_before(frame.index[0])
            if resolved.enabled:
                fired = stream.alarms_since(since, min_severity)
                if len(fired):
                    out[key] = fired
        return out
