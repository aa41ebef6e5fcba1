"""One rule for alarms and one order for overrides, wherever they are applied.

* The same scores give the same alarms and severities in a live cycle (stored
  events) and in a walk-forward backtest.
* Each threshold-override level wins in the documented order, in the detector
  pool (scoring) and in the outbox (queueing) alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from backtest.walkforward import walk_forward_events
from bot.runtime.cycle import Runtime
from bot.runtime.detector_pool import DetectorPool
from bot.runtime.seed import seed_watchlist_from_config
from core.config import default_config
from detectors import create_detector, registry
from detectors.alarms import detector_alarms
from detectors.base import Detector
from detectors.likelihood import LikelihoodThreshold
from detectors.thresholds import StaticThreshold
from feeds.pool import FeedPool
from feeds.replay import ReplayFeed
from storage.db import open_database
from storage.events import events_frame, list_events
from storage.models import Event
from storage.outbox import queue_alerts
from storage.thresholds import PRECEDENCE, set_threshold
from tests.bot.telegram.helpers import candles, store

STEP = 3_600_000


class ReturnSpikes(Detector):
    """Score = 1000 x |bar return|, static threshold 5: nothing learned, so every path sees the same scores."""

    name = "return_spikes"
    requires_training = False

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.threshold_ = StaticThreshold(5.0)

    @property
    def warmup(self) -> int:
        return 1

    def fit(self, frames: pd.DataFrame | Mapping[str, pd.DataFrame], labels: pd.DataFrame | None = None) -> Self:
        return self

    def score(self, frame: pd.DataFrame) -> pd.Series:
        return (frame["close"].pct_change().abs() * 1000).rename("score")

    def thresholds(self, scores: pd.Series) -> pd.Series:
        return self.threshold_.thresholds(scores)

    def save(self, directory: str | Path) -> Path:
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "return_spikes.json").write_text(json.dumps({"name": self.name}))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Self:
        json.loads((Path(directory) / "return_spikes.json").read_text())
        return cls()


def _market(n: int = 240) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    idx = pd.date_range("2024-03-01", periods=n, freq="h", tz="UTC")
    out = {}
    for sym in ("AAA/USDT", "BBB/USDT"):
        ret = rng.normal(0, 0.004, n)
        ret[rng.choice(np.arange(10, n), 12, replace=False)] += rng.choice([-1, 1], 12) * rng.uniform(0.006, 0.03, 12)
        close = 50 * np.exp(np.cumsum(ret))
        open_ = np.concatenate(([50.0], close[:-1]))
        out[sym] = pd.DataFrame(
            {"open": open_, "high": np.maximum(open_, close), "low": np.minimum(open_, close), "close": close},
            index=idx,
        ).assign(volume=1.0)
    return out


async def test_live_cycle_and_walk_forward_raise_the_same_alarms_and_severities(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.BUILTIN_DETECTORS, "return_spikes", f"{__name__}:ReturnSpikes")
    frames = _market()
    cfg = default_config(
        database={"url": f"sqlite:///{tmp_path / 'v.db'}"},
        exchanges={"replay": {}},
        watchlist=[{"exchange": "replay", "symbol": s, "timeframe": "1h"} for s in frames],
        detectors={"return_spikes": {}},
        scheduler={"history_bars": 50},
    )
    _engine, factory = open_database(cfg.database.url)
    seed_watchlist_from_config(cfg, factory)  # what compose does on start
    feed = ReplayFeed("replay", frames, "1h")
    runtime = Runtime(cfg, factory, FeedPool(feeds={"replay": feed}), DetectorPool(cfg, factory, tmp_path / "m"))
    index = next(iter(frames.values())).index
    first_close = int(index[60].value // 1_000_000) + STEP
    for now_ms in range(first_close, int(index[-1].value // 1_000_000) + STEP + 1, STEP):
        await runtime.run_cycle("1h", now_ms=now_ms)
    with factory() as s:
        live = events_frame(list_events(s, newest_first=False))

    backtest = walk_forward_events(frames, ReturnSpikes, train_bars=60, retrain_every=50)

    def rows(frame: pd.DataFrame) -> list[tuple[str, pd.Timestamp, float, float, str]]:
        frame = frame[frame["timestamp"] >= index[60]]
        return sorted((r.symbol, r.timestamp, round(r.score, 9), r.threshold, r.severity) for r in frame.itertuples())

    assert len(rows(live)) >= 10
    assert {r[4] for r in rows(live)} >= {"low", "medium"}
    assert rows(live) == rows(backtest)


class LikelihoodSpikes(ReturnSpikes):
    """ReturnSpikes judged by the stateful rule: Numenta's likelihood over the last 30 scores, 8-row suppression.

    The policy's start history is fixed (not learnt), so every fold of a backtest and every
    process of the bot start it alike; what decides the alarms is the recent live series.
    """

    name = "likelihood_spikes"

    def __init__(self, **params: Any) -> None:
        self.params = dict(params)
        self.threshold_ = LikelihoodThreshold(short=3, window=30, probability=1e-3, min_history=10)
        self.threshold_.fit(np.linspace(0.5, 2.0, 40))
        self.threshold_.suppress = 8

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
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        (path / "likelihood_spikes.json").write_text(json.dumps({"name": self.name}))
        return path


def _clustered_market(n: int = 260) -> dict[str, pd.DataFrame]:
    """Random walks with isolated spikes and incidents of 2-3 spikes a few bars apart (suppression's case)."""
    frames = _market(n)
    rng = np.random.default_rng(5)
    for k, frame in enumerate(frames.values()):
        close = frame["close"].to_numpy().copy()
        for start in (75 + k, 118, 163 - k, 205):
            for j in range(int(rng.integers(2, 4))):
                bar = start + 4 * j + int(rng.integers(0, 2))
                close[bar:] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.02, 0.04)
        open_ = np.concatenate(([close[0]], close[:-1]))
        frame["open"], frame["close"] = open_, close
        frame["high"], frame["low"] = np.maximum(open_, close), np.minimum(open_, close)
    return frames


def _runtime(cfg: Any, factory: Any, frames: dict[str, pd.DataFrame], models: Path) -> Runtime:
    feed = ReplayFeed("replay", frames, "1h")
    return Runtime(cfg, factory, FeedPool(feeds={"replay": feed}), DetectorPool(cfg, factory, models))


async def test_live_alarms_equal_walk_forward_with_a_stateful_policy_and_suppression_across_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cycles of 1-5 bars each, and a restart half way: the likelihood's history and the incident state
    carried from cycle to cycle (and rebuilt from the tail after the restart) give the backtest's alarms."""
    monkeypatch.setitem(registry.BUILTIN_DETECTORS, "likelihood_spikes", f"{__name__}:LikelihoodSpikes")
    frames = _clustered_market()
    cfg = default_config(
        database={"url": f"sqlite:///{tmp_path / 'v.db'}"},
        exchanges={"replay": {}},
        watchlist=[{"exchange": "replay", "symbol": s, "timeframe": "1h"} for s in frames],
        detectors={"likelihood_spikes": {}},
        scheduler={"history_bars": 50},
    )
    _engine, factory = open_database(cfg.database.url)
    seed_watchlist_from_config(cfg, factory)  # what compose does on start
    index = next(iter(frames.values())).index
    closes = [int(index[60].value // 1_000_000) + STEP]
    rng = np.random.default_rng(3)
    while closes[-1] < int(index[-1].value // 1_000_000) + STEP:
        closes.append(min(closes[-1] + int(rng.integers(1, 6)) * STEP, int(index[-1].value // 1_000_000) + STEP))
    restart_at = len(closes) // 2
    runtime = _runtime(cfg, factory, frames, tmp_path / "m")
    for i, now_ms in enumerate(closes):
        if i == restart_at:  # a new process: no carried scores, the pool starts again from the stored bars
            runtime = _runtime(cfg, factory, frames, tmp_path / "m")
        await runtime.run_cycle("1h", now_ms=now_ms)
    with factory() as s:
        live = events_frame(list_events(s, newest_first=False))

    backtest = walk_forward_events(frames, LikelihoodSpikes, train_bars=60, retrain_every=50)

    def rows(frame: pd.DataFrame) -> list[tuple[str, pd.Timestamp, float, float, str]]:
        frame = frame[frame["timestamp"] >= index[60]]
        return sorted(
            (r.symbol, r.timestamp, round(r.score, 9), round(r.threshold, 9), r.severity) for r in frame.itertuples()
        )

    assert len(rows(live)) >= 8
    assert rows(live) == rows(backtest)
    # the case is one where state matters: judging each cycle's bars alone (the policy's fixed start
    # history, no incident carried over) raises other alarms, and suppression drops runs
    det = LikelihoodSpikes()
    alone = sum(
        len(detector_alarms(det, det.score(f.iloc[: int(np.searchsorted(index, ts)) + 1]).iloc[-1:]))
        for f in frames.values()
        for ts in index[60:]
    )
    assert alone != len(rows(live))
    unsuppressed = LikelihoodSpikes()
    unsuppressed.threshold_.suppress = 0
    assert sum(len(detector_alarms(unsuppressed, unsuppressed.score(f).iloc[60:])) for f in frames.values()) > len(
        rows(live)
    )


# -- override order ---------------------------------------------------------------------------------

SYMBOL, DETECTOR = "BTC/USDT", "zscore"
# One override row per precedence level; each level's value is told apart by the scores below.
LEVEL_VALUES = {(True, True): 10.0, (False, True): 20.0, (True, False): 30.0, (False, False): 40.0}
SCORES = [15.0, 25.0, 35.0, 45.0]  # above exactly the values below them


def _set_levels(factory: Any, levels: list[tuple[bool, bool]]) -> None:
    with factory.begin() as s:
        for by_symbol, by_detector in levels:
            set_threshold(
                s, SYMBOL if by_symbol else "", DETECTOR if by_detector else "", LEVEL_VALUES[(by_symbol, by_detector)]
            )


@pytest.mark.parametrize("winner", range(len(PRECEDENCE)))
def test_each_override_level_wins_in_the_documented_order_in_pool_and_outbox(
    session_factory: Any, tmp_path: Path, winner: int
) -> None:
    factory = session_factory
    present = list(PRECEDENCE[winner:])  # the winning level and every level below it
    _set_levels(factory, present)
    expected = LEVEL_VALUES[PRECEDENCE[winner]]
    kept_scores = [s for s in SCORES if s > expected]

    # pool: alarms at scoring time
    url = str(factory.kw["bind"].url.render_as_string(hide_password=False))
    pool = DetectorPool(default_config(database={"url": url}), factory, tmp_path / "m")
    pool.ensure_ready({})
    detector = create_detector(DETECTOR, threshold={"policy": "static", "value": 1.0})
    scores = pd.Series(SCORES, index=pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC"))
    assert pool.override(DETECTOR, SYMBOL).threshold == expected
    assert pool.alarms_for(DETECTOR, SYMBOL, detector, scores)["score"].tolist() == kept_scores

    # outbox: the same resolution when queueing
    events = store(factory, SYMBOL, candles(48), [(10 + i, DETECTOR, s) for i, s in enumerate(SCORES)])
    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id.in_([e.id for e in events]))))
        alerts = queue_alerts(s, evs, chat_ids=[1], now=datetime(2024, 2, 1, tzinfo=UTC))
        queued = sorted(e.score for a in alerts for e in a.events)
    assert queued == kept_scores
