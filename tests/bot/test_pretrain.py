"""The pump models shipped in the package: loadable, traceable to their recipe, and reproducible in kind.

``vigil pumpdump pretrain`` made them (``bot/pretrain.py``); the slow test reruns the same recipe
on a sliver of the data and checks the result behaves like the shipped model on data neither saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from bot.pretrain import chunk_table, make_pretrained, score_tape
from detectors.pump.budget import BudgetCurve
from detectors.pump.detector import PumpDumpDetector
from detectors.pump.labels import pump_rows
from detectors.pump.pretrained import PRETRAINED_ROOT, pretrained_dir
from feeds.synthetic import generate_market
from feeds.synthetic_trades import generate_trades

GRAINS = [("candles", "1h"), ("chunks", None)]


@pytest.mark.parametrize("grain,timeframe", GRAINS)
def test_shipped_models_load_with_their_recipe_and_budget(grain: str, timeframe: str | None) -> None:
    det = PumpDumpDetector.pretrained(grain, timeframe)
    assert det is not None and det.grain_ == grain
    recipe = det.extra_["recipe"]
    assert recipe["command"] == "vigil pumpdump pretrain --out detectors/pump/pretrained" and not recipe["tiny"]
    budget = det.extra_["budget"]
    curve = BudgetCurve.from_json(budget["curve"])
    assert det.threshold_ == pytest.approx(curve.threshold_for(0.1)) and budget["budget"] == 0.1
    assert curve.rate_at(det.threshold_) <= 0.1
    folder = pretrained_dir(grain, timeframe)
    assert folder is not None and folder.parent == PRETRAINED_ROOT
    assert sum(f.stat().st_size for f in folder.iterdir()) < 1_000_000  # small files in the package


def test_no_model_ships_for_other_timeframes_and_a_bigger_budget_lowers_the_threshold() -> None:
    assert PumpDumpDetector.pretrained("candles", "5m") is None
    strict = PumpDumpDetector.pretrained("chunks")
    loose = PumpDumpDetector.pretrained("chunks", alert_budget=5.0)
    assert strict is not None and loose is not None and loose.threshold_ < strict.threshold_


def _chunk_auc(det: PumpDumpDetector, tape) -> float:  # noqa: ANN001
    table = score_tape(det, tape, 15, det.extra_["stream"]["window"])
    return float(roc_auc_score(table["gt"], table["score"]))


def test_shipped_chunk_model_ranks_pump_chunks_first_on_a_fresh_tape() -> None:
    det = PumpDumpDetector.pretrained("chunks")
    tape = generate_trades(8, minutes=60, seed=808, pumps_per_hour=2)
    assert _chunk_auc(det, tape) > 0.95


@pytest.mark.slow
def test_tiny_retrain_behaves_like_the_shipped_models(tmp_path: Path) -> None:
    make_pretrained(tmp_path, tiny=True, say=lambda _line: None)
    for grain, timeframe in GRAINS:
        tiny = PumpDumpDetector.load(pretrained_dir(grain, timeframe, root=tmp_path))
        shipped = PumpDumpDetector.pretrained(grain, timeframe)
        assert tiny.extra_["recipe"]["tiny"] and set(tiny.extra_) == set(shipped.extra_)
        assert tiny.params == {**shipped.params, "epochs": tiny.params["epochs"]}  # the same recipe, fewer epochs
        assert tiny.extra_.get("stream") == shipped.extra_.get("stream")
    # behaviour on data neither model saw: both rank pump chunks / pump bars first
    tiny = PumpDumpDetector.load(pretrained_dir("chunks", root=tmp_path))
    tape = generate_trades(8, minutes=60, seed=809, pumps_per_hour=2)
    assert _chunk_auc(tiny, tape) > 0.9 and _chunk_auc(PumpDumpDetector.pretrained("chunks"), tape) > 0.95
    market = generate_market(6, days=20, timeframe="1h", seed=810, anomaly_rate=1 / 100)
    for det in (
        PumpDumpDetector.load(pretrained_dir("candles", "1h", root=tmp_path)),
        PumpDumpDetector.pretrained("candles", "1h"),
    ):
        scores = det.score_batch(market.candles, last_n=10**6)
        y = np.concatenate([pump_rows(f, market.labels, s) for s, f in market.candles.items()])
        s = np.concatenate([scores[k].to_numpy() for k in market.candles])
        ok = ~np.isnan(s)
        assert roc_auc_score(y[ok], s[ok]) > 0.8
    assert len(chunk_table(tape, 15, 20)) == 8 * 60 * 4  # one row per symbol and chunk
