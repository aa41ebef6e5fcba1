"""Quality floors of the pump detector (slow: each trains a small model)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.pump.detector import PumpDumpDetector
from detectors.pump.diagnostics import pump_spans
from detectors.pump.metrics import event_detection
from feeds.synthetic import generate_market


@pytest.mark.slow
def test_pump_detector_finds_synthetic_pumps_by_the_spike_bar_on_unseen_seeds() -> None:
    train = generate_market(10, days=1.5, timeframe="1m", seed=3, anomaly_rate=1 / 150)
    det = PumpDumpDetector(epochs=10, random_state=0).fit(train.candles, train.labels)
    totals = np.zeros(5)
    for seed in (201, 202):  # seeds never used while developing
        market = generate_market(10, days=1.5, timeframe="1m", seed=seed, anomaly_rate=1 / 150)
        scores = det.score_batch(market.candles, last_n=10_000)
        for symbol, frame in market.candles.items():
            counts = event_detection(
                det.is_anomaly(scores[symbol]).to_numpy(), pump_spans(frame, market.labels, symbol)
            )
            totals += [counts["tp"], counts["fn"], counts["fp"], counts["episodes"], counts["late"]]
    tp, fn, fp, episodes, _late = totals
    recall = tp / (tp + fn)
    precision = (episodes - fp) / episodes
    f1 = 2 * precision * recall / (precision + recall)
    assert tp + fn >= 20
    assert f1 >= 0.8, (precision, recall, tp, fn, fp)
