"""A sweep's column is the single run with the same parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtest.engine import run_backtest
from backtest.events import normalize_events
from backtest.strategy import make_strategy
from backtest.sweep import heatmap_png, parse_grid, run_sweep
from core.errors import InputError


def _market(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate(([50.0], close[:-1])) * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    idx = pd.date_range("2024-03-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": 1.0}, index=idx)


@pytest.fixture
def setup() -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    candles = {"AAA/USDT": _market(400, 3), "BBB/USDT": _market(400, 4)}
    rng = np.random.default_rng(5)
    rows = []
    for sym in candles:
        bars = np.sort(rng.choice(399, 60, replace=False))
        rows.append(
            pd.DataFrame({"timestamp": candles[sym].index[bars], "score": rng.uniform(0, 5, 60), "symbol": sym})
        )
    return candles, normalize_events(pd.concat(rows))


@pytest.mark.parametrize("direction", ["long", "short"])
def test_sweep_column_equals_single_run(setup: tuple[dict[str, pd.DataFrame], pd.DataFrame], direction: str) -> None:
    candles, events = setup
    base = make_strategy("fixed_hold", {"fees": 0.001, "slippage": 0.0005, "direction": direction, "size": 0.5})
    grid = {"min_score": [None, 2.5], "hold_bars": [3, 12], "stop_loss": [None, 0.01], "take_profit": [None, 0.02]}
    sweep = run_sweep(candles, events, base, grid)
    assert sweep.columns == 16 * 2
    for row in sweep.table.itertuples(index=False):
        params = {k: None if pd.isna(getattr(row, k)) else getattr(row, k) for k in grid}
        params["hold_bars"] = int(params["hold_bars"])
        single = run_backtest(candles, events, base.replace(**params), random_draws=10)
        assert row.trades == single.metrics["strategy"]["trades"]
        assert row.total_return == pytest.approx(single.metrics["strategy"]["total_return"], rel=1e-9, abs=1e-12)
        assert row.expectancy == pytest.approx(single.metrics["strategy"]["expectancy"], rel=1e-9, nan_ok=True)
        assert row.exposure == pytest.approx(single.metrics["strategy"]["exposure"], rel=1e-9)


def test_sweep_heatmap_is_a_png(setup: tuple[dict[str, pd.DataFrame], pd.DataFrame], tmp_path) -> None:
    candles, events = setup
    sweep = run_sweep(candles, events, make_strategy(), {"hold_bars": [2, 4, 8], "stop_loss": [None, 0.02]})
    data = heatmap_png(sweep, path=tmp_path / "h.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "h.png").stat().st_size == len(data)


def test_parse_grid_types_values_and_rejects_bad_ones() -> None:
    assert parse_grid(["hold_bars=6,12", "stop_loss=none,0.02"]) == {"hold_bars": [6, 12], "stop_loss": [None, 0.02]}
    with pytest.raises(InputError, match="hold_bars='x'"):
        parse_grid(["hold_bars=6,x"])
    with pytest.raises(InputError, match="'fees' cannot be swept"):
        parse_grid(["fees=0,0.1"])


def test_random_baseline_makes_as_many_trades_as_the_strategy(
    setup: tuple[dict[str, pd.DataFrame], pd.DataFrame],
) -> None:
    candles, events = setup
    result = run_backtest(candles, events, make_strategy("fixed_hold", {"hold_bars": 4}), random_draws=20)
    assert result.random_draws == 20
    assert result.metrics["random"]["trades"] == result.metrics["strategy"]["trades"]
    assert 0.0 <= result.random_p_value <= 1.0
    again = run_backtest(candles, events, make_strategy("fixed_hold", {"hold_bars": 4}), random_draws=20)
    assert again.metrics["random"] == result.metrics["random"]  # seeded


def test_random_baseline_trades_even_when_stops_end_trades_early(
    setup: tuple[dict[str, pd.DataFrame], pd.DataFrame],
) -> None:
    candles, events = setup
    strategy = make_strategy("bracket", {"hold_bars": 200, "take_profit": 0.01, "stop_loss": 0.01})
    result = run_backtest(candles, events, strategy, random_draws=10)
    assert result.metrics["random"]["trades"] >= 0.8 * result.metrics["strategy"]["trades"] > 0
