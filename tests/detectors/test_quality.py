"""Quality floors on a seeded synthetic market (the full table is bench/eval_detectors.py)."""

from __future__ import annotations

import pytest

from detectors.metrics import evaluate_series, summarize
from detectors.registry import create_detector
from feeds.synthetic import generate_market


def _evaluate(name: str, **params: object) -> dict[str, float]:
    market = generate_market(3, days=45, timeframe="1h", seed=5)
    train = {s: f.iloc[: int(len(f) * 0.2)] for s, f in market.candles.items()}
    det = create_detector(name, **params).fit(train)
    parts = []
    for sym, frame in market.candles.items():
        scores = det.score(frame)
        test = frame.index >= train[sym].index[-1]
        labels = market.labels[market.labels["symbol"] == sym]
        parts.append(evaluate_series(scores[test], det.is_anomaly(scores)[test], labels))
    return summarize(parts)


def test_zscore_separates_planted_anomalies() -> None:
    m = _evaluate("zscore")
    assert m["auc_roc"] >= 0.85
    assert m["event_recall"] >= 0.4
    assert m["event_precision"] >= 0.5


@pytest.mark.slow
def test_lstm_forecaster_finds_planted_anomalies() -> None:
    m = _evaluate("lstm_forecaster", epochs=8, units=16)
    assert m["auc_roc"] >= 0.9
    assert m["event_f1"] >= 0.5
