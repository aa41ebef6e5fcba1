"""Walk-forward with the real detectors from ``detectors.registry`` (zscore; a tiny LSTM, marked slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.strategy import make_strategy
from backtest.walkforward import detector_factory, walk_forward_events
from bot.cli.root import app
from storage.candle_csv import write_candle_csv

pytest.importorskip("detectors.registry")


def _market(n: int = 600) -> pd.DataFrame:
    rng = np.random.default_rng(21)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    spikes = np.array([250, 400, 520])
    close[spikes[spikes < n]] *= np.array([1.08, 0.93, 1.1])[spikes < n]  # for the detector to find
    open_ = np.concatenate(([100.0], close[:-1]))
    idx = pd.date_range("2024-06-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.uniform(50, 150, n),
        },
        index=idx,
    )


class Recording:
    """Wraps the registry factory to keep every fitted model's training range."""

    def __init__(self, name: str, params: dict[str, object] | None = None) -> None:
        self.make = detector_factory(name, params)
        self.models: list[object] = []

    def __call__(self) -> object:
        det = self.make()
        self.models.append(det)
        return det


def test_walk_forward_zscore_trains_each_fold_on_the_past_only() -> None:
    market = _market()
    maker = Recording("zscore")
    events = walk_forward_events({"SYN/USDT": market}, maker, train_bars=200, retrain_every=100)
    starts = [market.index[s] for s in range(200, 600, 100)]
    assert len(maker.models) == len(starts)
    for det, start in zip(maker.models, starts, strict=True):
        first_ms, last_ms = det.train_range_
        assert last_ms < start.value // 10**6
        assert first_ms >= (start - pd.Timedelta(hours=200)).value // 10**6
    assert (events["timestamp"] >= events["fold_start"]).all()
    assert {market.index[250], market.index[400], market.index[520]} & set(events["timestamp"])
    result = run_backtest({"SYN/USDT": market}, normalize_events(events), make_strategy(), random_draws=10)
    assert result.metrics["strategy"]["trades"] > 0


def test_cli_walk_forward_with_zscore(tmp_path: Path) -> None:
    write_candle_csv(_market(), tmp_path / "c.csv")
    out = tmp_path / "wf.json"
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--candles",
            str(tmp_path / "c.csv"),
            "--walk-forward",
            "--detector",
            "zscore",
            "--train-bars",
            "200",
            "--retrain-every",
            "100",
            "--param",
            "hold_bars=4",
            "--random-draws",
            "10",
            "--json",
            str(out),
            "--db",
            f"sqlite:///{tmp_path}/x.db",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["metrics"]["strategy"]["trades"] > 0


def test_cli_walk_forward_unknown_detector_is_one_line(tmp_path: Path) -> None:
    write_candle_csv(_market(), tmp_path / "c.csv")
    res = CliRunner().invoke(
        app,
        [
            "backtest",
            "--candles",
            str(tmp_path / "c.csv"),
            "--walk-forward",
            "--detector",
            "nope",
            "--db",
            f"sqlite:///{tmp_path}/x.db",
        ],
    )
    assert res.exit_code == 1 and "nope" in res.output and "Traceback" not in res.output


@pytest.mark.slow
def test_walk_forward_tiny_lstm_forecaster() -> None:
    market = _market(420)
    maker = Recording("lstm_forecaster", {"lookback": 8, "epochs": 1, "units": 4, "layers": 1, "batch_size": 64})
    events = walk_forward_events({"SYN/USDT": market}, maker, train_bars=200, retrain_every=110)
    assert len(maker.models) == 2
    for det, start in zip(maker.models, (market.index[200], market.index[310]), strict=True):
        assert det.train_range_[1] < start.value // 10**6
    assert events.empty or (events["timestamp"] >= events["fold_start"]).all()
