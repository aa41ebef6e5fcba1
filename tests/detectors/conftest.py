"""Small hand-made series for detector tests (the synthetic market is tested elsewhere)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def _make_candles(n: int = 400, seed: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    """A random-walk candle frame, optionally with a price+volume spike at one row."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = np.exp(rng.normal(5, 0.3, n))
    if spike_at is not None:
        close[spike_at:] *= 1.25
        volume[spike_at] *= 30
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, n))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)


@pytest.fixture
def candles() -> pd.DataFrame:
    return _make_candles()


@pytest.fixture(scope="session")
def make_candles():  # noqa: ANN201
    """The candle factory itself, for tests that need several series."""
    return _make_candles
