"""Walk-forward events: each model sees only bars before its fold; events never depend on later bars.

The detector here is test-local and implements the ``detectors.base.Detector``
contract; the registry-backed detectors are exercised in ``test_walkforward_registry.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Self

import numpy as np
import pandas as pd

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.strategy import make_strategy
from backtest.walkforward import walk_forward_events
from detectors.base import Detector


class ReturnZ(Detector):
    """|log return - train mean| / train std, alarm above 2.5; records what it was trained on."""

    name = "return_z"
    requires_training = True
    fits: list[tuple[pd.Timestamp, pd.Timestamp]] = []

    @property
    def warmup(self) -> int:
        return 1

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        frames = frames if isinstance(frames, Mapping) else {"": frames}
        r = np.concatenate([np.diff(np.log(f["close"].to_numpy())) for f in frames.values()])
        self.mu_, self.sd_ = float(r.mean()), float(r.std())
        first = min(f.index[0] for f in frames.values())
        last = max(f.index[-1] for f in frames.values())
        ReturnZ.fits.append((first, last))
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        r = np.log(frame["close"]).diff()
        return (r - self.mu_).abs() / self.sd_

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return pd.Series(2.5, index=scores.index)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "return_z.json").write_text(json.dumps({"name": self.name, "mu": self.mu_, "sd": self.sd_}))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        meta = json.loads((Path(directory) / "return_z.json").read_text())
        det = cls()
        det.mu_, det.sd_ = meta["mu"], meta["sd"]
        return det


def _market(n: int = 400, seed: int = 7) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    out = {}
    idx = pd.date_range("2024-05-01", periods=n, freq="h", tz="UTC")
    for sym in ("AAA/USDT", "BBB/USDT"):
        close = 10 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
        open_ = np.concatenate(([10.0], close[:-1]))
        out[sym] = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * 1.001,
                "low": np.minimum(open_, close) * 0.999,
                "close": close,
                "volume": 1.0,
            },
            index=idx,
        )
    return out


def test_walk_forward_models_never_see_their_fold() -> None:
    candles = _market()
    ReturnZ.fits.clear()
    events = walk_forward_events(candles, ReturnZ, train_bars=100, retrain_every=50)
    idx = candles["AAA/USDT"].index
    starts = [idx[s] for s in range(100, 400, 50)]
    assert len(ReturnZ.fits) == len(starts)
    for (first, last), start in zip(ReturnZ.fits, starts, strict=True):
        assert last < start and first >= start - pd.Timedelta(hours=100)
    assert len(events) > 0
    assert (events["timestamp"] >= events["fold_start"]).all()
    assert events["timestamp"].min() >= idx[100]


def test_walk_forward_events_before_t_ignore_candles_after_t() -> None:
    candles = _market()
    base = walk_forward_events(candles, ReturnZ, train_bars=100, retrain_every=50)
    t = 230
    rng = np.random.default_rng(1)
    changed = {}
    for sym, frame in candles.items():
        f = frame.copy()
        f.iloc[t + 1 :, :4] *= rng.uniform(0.7, 1.3, size=(len(f) - t - 1, 1))
        changed[sym] = f
    other = walk_forward_events(changed, ReturnZ, train_bars=100, retrain_every=50)
    cut = candles["AAA/USDT"].index[t]
    pd.testing.assert_frame_equal(
        base[base.timestamp <= cut].reset_index(drop=True), other[other.timestamp <= cut].reset_index(drop=True)
    )


def test_walk_forward_events_feed_a_backtest() -> None:
    candles = _market()
    events = normalize_events(walk_forward_events(candles, ReturnZ, train_bars=100, retrain_every=100))
    result = run_backtest(candles, events, make_strategy("fixed_hold", {"hold_bars": 4}), random_draws=10)
    assert result.metrics["strategy"]["trades"] > 0
    assert set(result.trades["symbol"]) <= {"AAA/USDT", "BBB/USDT"}
    assert (result.trades["entry_ts"] > events["timestamp"].min()).all()
