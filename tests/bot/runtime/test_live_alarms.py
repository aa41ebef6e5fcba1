"""The live cycle's alarm streams: one batched call per cycle, bounded state, restarts on a new model."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd

from bot.runtime.live_alarms import LiveAlarms
from detectors.alarms import detector_alarms
from detectors.base import Detector
from detectors.likelihood import LikelihoodThreshold
from storage.thresholds import Resolved


class CountingSpikes(Detector):
    """|return| x 1000 judged by a likelihood policy with suppression; counts its ``score_batch`` calls."""

    name = "counting_spikes"
    requires_training = False

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.threshold_ = LikelihoodThreshold(short=2, window=20, probability=1e-3, min_history=5)
        self.threshold_.fit(np.linspace(0.5, 2.0, 30))
        self.threshold_.suppress = 6
        self.calls: list[int] = []

    @property
    def warmup(self) -> int:
        return 1

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        return (frame["close"].pct_change().abs() * 1000).rename("score")

    def score_batch(self, frames: Mapping[str, pd.DataFrame], last_n: int = 1) -> dict[str, pd.Series]:
        self.calls.append(last_n)
        return super().score_batch(frames, last_n)

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.thresholds(scores)

    def alarm_values(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.transform(scores)

    @property
    def suppress_rows(self) -> int:
        return self.threshold_.suppress

    @property
    def alarm_lookback(self) -> int:
        return self.threshold_.lookback

    def save(self, directory: str | Path) -> Path:
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        return cls()


def _series(n: int = 300, seed: int = 2) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-05-01", periods=n, freq="h", tz="UTC")
    out = {}
    for sym in ("x:AAA/USDT", "x:BBB/USDT"):
        ret = rng.normal(0, 0.003, n)
        spikes = rng.choice(np.arange(5, n), 20, replace=False)
        ret[spikes] += rng.choice([-1, 1], 20) * rng.uniform(0.01, 0.03, 20)
        out[sym] = pd.DataFrame({"close": 100 * np.exp(np.cumsum(ret))}, index=idx)
    return out


def _judge(live: LiveAlarms, det: Detector, frames: dict[str, pd.DataFrame], end: int, *, token: Any = "v1", **kw):
    window = {k: f.iloc[max(0, end - 80) : end] for k, f in frames.items()}  # the cycle's 80-bar frames
    since = next(iter(frames.values())).index[end - kw.pop("new", 1)]
    return live.judge(
        "counting_spikes",
        "1h",
        det,
        token,
        window,
        last_n=kw.pop("last_n", 1),
        since=since,
        override=kw.pop("override", lambda symbol: Resolved(None, True)),
    )


def test_one_batched_call_per_cycle_sized_to_what_the_streams_need() -> None:
    frames, det, live = _series(), CountingSpikes(), LiveAlarms()
    _judge(live, det, frames, 100)
    assert det.calls == [det.alarm_lookback + 2 * det.suppress_rows + 1]  # the start: history for the policy
    _judge(live, det, frames, 101)
    _judge(live, det, frames, 104, new=3, last_n=3)
    assert det.calls[1:] == [1, 3]
    _judge(live, det, frames, 104, new=3, last_n=3)  # the same bars again: nothing to score
    assert len(det.calls) == 3


def test_live_alarms_are_those_of_the_whole_series_and_can_be_asked_again() -> None:
    frames, det, live = _series(), CountingSpikes(), LiveAlarms()
    seen: dict[str, list[pd.Timestamp]] = {k: [] for k in frames}
    end = 100
    rng = np.random.default_rng(0)
    while end < 300:
        step = min(int(rng.integers(1, 7)), 300 - end)
        end += step
        for key, fired in _judge(live, det, frames, end, new=step, last_n=step).items():
            seen[key] += list(fired.index)
    start = next(iter(frames.values())).index[100]
    for key, frame in frames.items():
        whole = detector_alarms(det, det.score(frame.iloc[100 - 80 :]))
        assert seen[key] == list(whole.index[whole.index >= start])
        assert len(seen[key]) >= 3
    again = _judge(live, det, frames, 300, new=30, last_n=30)  # a cycle that failed after judging asks again
    for key in frames:
        assert list(again.get(key, pd.DataFrame()).index) == [t for t in seen[key] if t >= frames[key].index[270]]


def test_a_new_model_or_a_moved_frame_starts_the_stream_again_and_dropped_symbols_are_forgotten() -> None:
    frames, det, live = _series(), CountingSpikes(), LiveAlarms()
    _judge(live, det, frames, 100)
    _judge(live, det, frames, 101, token="v2")  # retrained: its scores are on another scale
    assert det.calls[-1] == det.alarm_lookback + 2 * det.suppress_rows + 1
    _judge(live, det, frames, 250, token="v2")  # the carried rows are gone from the 80-bar frame
    assert det.calls[-1] == det.alarm_lookback + 2 * det.suppress_rows + 1
    only = {"x:AAA/USDT": frames["x:AAA/USDT"]}
    _judge(live, det, only, 251, token="v2")
    assert set(live.streams("counting_spikes", "1h")) == {"x:AAA/USDT"}
    assert all(len(s._scores) <= det.alarm_lookback for s in live.streams("counting_spikes", "1h").values())


def test_a_switched_off_symbol_raises_nothing_but_keeps_its_incident_state() -> None:
    frames, det = _series(), CountingSpikes()
    on, off = LiveAlarms(), LiveAlarms()
    for end in range(100, 300, 5):
        on_fired = _judge(on, det, frames, end, new=5, last_n=5)
        off_fired = _judge(off, det, frames, end, new=5, last_n=5, override=lambda s: Resolved(None, s != "AAA/USDT"))
        assert "x:AAA/USDT" not in off_fired
        assert set(off_fired.get("x:BBB/USDT", pd.DataFrame()).index) == set(
            on_fired.get("x:BBB/USDT", pd.DataFrame()).index
        )
    a_on, a_off = on.streams("counting_spikes", "1h")["x:AAA/USDT"], off.streams("counting_spikes", "1h")["x:AAA/USDT"]
    assert a_on.incident == a_off.incident


class StaticSpikes(CountingSpikes):
    """A fixed level (and suppression): the streams skip the rule for symbols that cannot fire."""

    def __init__(self) -> None:
        super().__init__()
        from detectors.thresholds import StaticThreshold

        self.threshold_ = StaticThreshold(12.0)
        self.threshold_.suppress = 10

    def constant_threshold(self) -> float | None:
        return self.threshold_.level


def test_symbols_that_cannot_fire_skip_the_rule_and_keep_the_incident_count() -> None:
    frames, det, live = _series(seed=4), StaticSpikes(), LiveAlarms()
    assert det.alarm_lookback == 0 and det.constant_threshold() == 12.0
    seen: dict[str, list[pd.Timestamp]] = {k: [] for k in frames}
    for end in range(100, 300, 3):
        for key, fired in _judge(live, det, frames, end, new=3, last_n=3).items():
            seen[key] += list(fired.index)
    start = next(iter(frames.values())).index[100]
    for key, frame in frames.items():
        whole = detector_alarms(det, det.score(frame.iloc[20:]))
        live_seen = [t for t in seen[key] if t >= start]
        assert live_seen == list(whole.index[whole.index >= start]) and len(live_seen) >= 2
