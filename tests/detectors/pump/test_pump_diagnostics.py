from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.pump.diagnostics import alarm_episodes, false_alarm_kinds, first_alarm_offsets, pump_spans, spike_bar
from tests.detectors.pump.pump_data import candle_frame, pump_labels


def test_pump_spans_end_the_rise_at_the_highest_high() -> None:
    frame = candle_frame(40, pumps=(10,))
    assert pump_spans(frame, pump_labels("X", frame, (10,)), "X") == [(10, 12, 17)]
    assert pump_spans(frame, pump_labels("X", frame, (10,)), "Y") == []


def test_spike_bar_skips_the_quiet_lead_up() -> None:
    close = np.array([100, 100.1, 99.9, 100.0, 104.0, 109.0, 112.0, 105.0])  # lead bars 1-3, rise 4-6
    assert spike_bar(close, 1, 6) == 4
    assert spike_bar(np.full(5, 1.0), 1, 3) == 3  # no rise: falls back to the peak


def test_alarm_episodes_are_runs_of_consecutive_alarms() -> None:
    assert alarm_episodes(np.array([0, 1, 1, 0, 1, 0, 0, 1], dtype=bool)) == [(1, 2), (4, 4), (7, 7)]


def test_false_alarm_kinds_name_the_label_an_episode_falls_on() -> None:
    index = pd.date_range("2024-01-01", periods=40, freq="1min", tz="UTC")
    labels = pd.DataFrame(
        {
            "start": index[[5, 20]],
            "end": index[[12, 20]],
            "kind": ["pump_dump", "level_shift"],
        }
    )
    alarms = np.zeros(40, dtype=bool)
    alarms[[6, 14, 21, 33]] = True  # inside the pump, just after it, just after the shift, far from all
    kinds = false_alarm_kinds(alarms, index, labels, [(5, 8, 12)], tail=pd.Timedelta(minutes=3))
    assert kinds == ["after_pump", "level_shift", "noise"]


def test_first_alarm_offsets_are_relative_to_the_spike_bar() -> None:
    close = np.array([100, 100.1, 99.9, 100.0, 104.0, 109.0, 112.0, 105.0])
    alarms = np.zeros(8, dtype=bool)
    alarms[3] = True  # one bar before the spike (bar 4), during the social lead-up
    assert first_alarm_offsets(alarms, close, [(1, 6, 7)]) == [-1]
    assert first_alarm_offsets(np.zeros(8, dtype=bool), close, [(1, 6, 7)]) == []
