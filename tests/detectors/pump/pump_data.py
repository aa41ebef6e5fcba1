"""Small seeded pump data for the pump_dump tests: feature tables and candle frames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.pump.features import LA_MORGIA_COLUMNS


def feature_table(n_events: int = 12, rows: int = 20, seed: int = 0, jump: float = 0.3) -> pd.DataFrame:
    """La Morgia-style table: each event drifts, its last row (gt=1) jumps in volume, rush orders and price."""
    rng = np.random.default_rng(seed)
    parts = []
    for event in range(n_events):
        level = rng.uniform(0.5, 5.0, size=8) * 10.0 ** rng.integers(-6, 2)
        walk = np.exp(np.cumsum(rng.normal(0, 0.01, size=(rows, 8)), axis=0))
        values = level * walk
        values[-1] *= 1.0 + jump * rng.uniform(0.8, 1.2, size=8)
        dates = pd.date_range("2021-06-01", periods=rows, freq="1min") + pd.Timedelta(days=event)
        frame = pd.DataFrame(values, columns=LA_MORGIA_COLUMNS[:8])
        hour, minute = dates.hour.to_numpy(), dates.minute.to_numpy()
        frame["hour_sin"], frame["hour_cos"] = np.sin(2 * np.pi * hour / 24), np.cos(2 * np.pi * hour / 24)
        frame["minute_sin"], frame["minute_cos"] = np.sin(2 * np.pi * minute / 60), np.cos(2 * np.pi * minute / 60)
        frame.insert(0, "pump_index", event)
        frame.insert(0, "date", dates.strftime("%Y-%m-%d %H:%M:%S"))
        frame["symbol"] = f"C{event}"
        frame["gt"] = 0
        frame.loc[rows - 1, "gt"] = 1
        parts.append(frame)
    return pd.concat(parts, ignore_index=True)


def candle_frame(n: int = 240, seed: int = 0, pumps: tuple[int, ...] = (), social: bool = True) -> pd.DataFrame:
    """One-minute candles with pumps starting at the given bars: volume x20, price +15 % over 3 bars, then dump."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    volume = rng.lognormal(3, 0.3, n)
    mentions = rng.poisson(5, n).astype(float)
    for p in pumps:
        for k, gain in enumerate((1.05, 1.10, 1.15)):
            if p + k < n:
                close[p + k] *= gain
                volume[p + k] *= 20
                mentions[p + k] += 40
        for k in range(3, 8):
            if p + k < n:
                close[p + k] *= 1.15 - 0.03 * (k - 2)
    open_ = np.r_[close[0], close[:-1]]
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": volume,
        },
        index=index,
    )
    if social:
        frame["social_volume"] = mentions
    return frame


def pump_labels(symbol: str, frame: pd.DataFrame, pumps: tuple[int, ...]) -> pd.DataFrame:
    """Labels in the synthetic market's format for pumps starting at the given bars (8 bars long)."""
    rows = [
        {"symbol": symbol, "start": frame.index[p], "end": frame.index[min(p + 7, len(frame) - 1)], "kind": "pump_dump"}
        for p in pumps
    ]
    return pd.DataFrame(rows, columns=["symbol", "start", "end", "kind"])
