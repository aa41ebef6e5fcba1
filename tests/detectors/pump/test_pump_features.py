from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from detectors.pump.features import (
    CANDLE_MARKET_COLUMNS,
    LA_MORGIA_COLUMNS,
    candle_feature_arrays,
    causal_windows,
    read_feature_file,
    scale_windows,
    trades_to_chunks,
)
from detectors.pump.metrics import (
    best_event_f1_threshold,
    best_f1_threshold,
    event_f1,
    event_folds,
    event_hit_rate,
    event_split,
)
from tests.detectors.pump.pump_data import feature_table


def _write(tmp_path: Path, frame: pd.DataFrame, name: str = "f.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_read_feature_file_accepts_std_order_names(tmp_path: Path) -> None:
    frame = feature_table(2, 5).rename(columns={"std_rush_order": "std_order", "avg_rush_order": "avg_order"})
    table = read_feature_file(_write(tmp_path, frame))
    assert list(table.columns[:3]) == ["date", "pump_index", "std_rush_order"]
    assert table["line"].tolist()[:2] == [2, 3]


def test_read_feature_file_missing_column_names_file_and_column(tmp_path: Path) -> None:
    path = _write(tmp_path, feature_table(2, 5).drop(columns=["std_trades"]))
    with pytest.raises(InputError, match=r"f\.csv: missing column\(s\) std_trades"):
        read_feature_file(path)


def test_read_feature_file_nan_names_line_and_column(tmp_path: Path) -> None:
    frame = feature_table(2, 5)
    frame.loc[6, "avg_volume"] = np.nan
    with pytest.raises(InputError, match=r"f\.csv:8: column 'avg_volume'"):
        read_feature_file(_write(tmp_path, frame))


def test_read_feature_file_empty_and_split_events_are_rejected(tmp_path: Path) -> None:
    frame = feature_table(2, 5)
    with pytest.raises(InputError, match="no data rows"):
        read_feature_file(_write(tmp_path, frame.iloc[:0], "empty.csv"))
    split = pd.concat([frame.iloc[:3], frame.iloc[5:], frame.iloc[3:5]], ignore_index=True)
    with pytest.raises(InputError, match=r"line 10, column pump_index: rows of event 0 are not consecutive"):
        read_feature_file(_write(tmp_path, split, "split.csv"))
    no_event = frame.copy()
    no_event["pump_index"] = no_event["pump_index"].astype(object)
    no_event.loc[4, "pump_index"] = ""
    with pytest.raises(InputError, match=r":6: column 'pump_index'"):
        read_feature_file(_write(tmp_path, no_event, "noevent.csv"))


def test_read_feature_file_bad_label_is_rejected(tmp_path: Path) -> None:
    frame = feature_table(2, 5)
    frame.loc[2, "gt"] = 2
    with pytest.raises(InputError, match=r":4: column 'gt': label must be 0 or 1"):
        read_feature_file(_write(tmp_path, frame))


def test_causal_windows_never_cross_events_and_ignore_later_rows() -> None:
    values = np.arange(10, dtype=float).reshape(-1, 1)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    full = causal_windows(values, groups, 3)
    assert full[4, :, 0].tolist() == [4, 4, 4]  # first row of event 1: padded with itself, not event 0
    assert full[1, :, 0].tolist() == [0, 0, 1]
    assert full[9, :, 0].tolist() == [7, 8, 9]
    prefix = causal_windows(values[:7], groups[:7], 3)
    np.testing.assert_array_equal(prefix, full[:7])


def test_scale_windows_is_scale_free_and_appends_steps() -> None:
    rng = np.random.default_rng(0)
    w = rng.uniform(1, 2, size=(4, 6, 3))
    a = scale_windows(w, [0, 1])
    b = scale_windows(w * np.array([1e-6, 1e3, 1.0]), [0, 1])
    assert a.shape == (4, 6, 5)
    np.testing.assert_allclose(a[:, :, [0, 1, 3, 4]], b[:, :, [0, 1, 3, 4]], atol=1e-5)
    np.testing.assert_allclose(a[:, :, 2], w[:, :, 2], atol=1e-6)


def test_trades_to_chunks_groups_buy_fills_of_one_millisecond_as_one_rush_order() -> None:
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
    trades = pd.DataFrame(
        {
            "timestamp": [t0, t0, t0, t0 + 5, t0 + 61_000, t0 + 61_000, t0 + 62_000],
            "price": [1.0, 1.1, 1.2, 1.0, 2.0, 2.1, 2.0],
            "amount": [1.0, 1.0, 1.0, 2.0, 1.0, 1.0, 3.0],
            "side": ["buy", "buy", "buy", "sell", "sell", "sell", "buy"],
        }
    )
    chunks = trades_to_chunks(trades, "60s", window=1)
    assert list(chunks.columns) == LA_MORGIA_COLUMNS
    assert len(chunks) == 2
    # chunk 1: one 3-fill buy order (rush) + one sell order; chunk 2: a 2-fill SELL (not rush) + one buy
    assert chunks["avg_rush_order"].tolist() == [1.0, 0.0]
    assert chunks["avg_volume"].tolist() == [5.0, 5.0]
    assert chunks["avg_price_max"].tolist() == [1.2, 2.1]


def test_trades_to_chunks_missing_column_is_named() -> None:
    with pytest.raises(InputError, match="missing column.*side"):
        trades_to_chunks(pd.DataFrame({"timestamp": [1], "price": [1.0], "amount": [1.0]}))


def test_best_f1_threshold_separates_perfectly_separable_scores() -> None:
    y = np.array([0, 0, 1, 0, 1])
    s = np.array([0.1, 0.2, 0.9, 0.3, 0.8])
    t = best_f1_threshold(y, s)
    assert ((s >= t) == y.astype(bool)).all()


def test_event_hit_rate_counts_top_row_within_one_of_a_positive() -> None:
    events = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y = np.array([0, 0, 0, 1, 0, 0, 0, 1])
    scores = np.array([0, 0, 5, 1, 9, 0, 0, 1.0])  # event 0: top is next to the pump; event 1: far
    assert event_hit_rate(events, y, scores) == 0.5


def test_event_split_keeps_whole_events_together() -> None:
    events = np.repeat(np.arange(10), 4)
    mask = event_split(events, 0.3, seed=1)
    per_event = pd.Series(mask).groupby(events).nunique()
    assert (per_event == 1).all()
    assert pd.Series(mask).groupby(events).first().sum() == 3


def test_event_folds_deal_whole_events_into_k_balanced_folds() -> None:
    events = np.repeat([11, 4, 7, 30, 2, 9, 5], 3)
    folds = event_folds(events, 3, seed=2)
    assert (pd.Series(folds).groupby(events).nunique() == 1).all()
    sizes = pd.Series(folds).groupby(events).first().value_counts()
    assert sorted(sizes.index) == [0, 1, 2] and sizes.max() - sizes.min() <= 1
    with pytest.raises(ValueError, match="7 events cannot fill 8 folds"):
        event_folds(events, 8, seed=0)


def test_event_f1_counts_pump_runs_and_false_alarm_episodes() -> None:
    y = np.array([0, 1, 1, 0, 0, 0, 0, 1, 0, 0], dtype=bool)
    groups = np.zeros(10, dtype=int)
    alarms = np.array([0, 0, 1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)  # catches run 1, misses run 2, one false episode
    assert event_f1(alarms, y, groups) == pytest.approx(0.5)
    # a run split by a symbol change is two runs
    assert event_f1(y, y, np.array([0, 0, 1, 1, 1, 1, 1, 1, 1, 1])) == pytest.approx(1.0)


def test_best_event_f1_threshold_prefers_one_alarm_per_pump_over_row_recall() -> None:
    y = np.array([0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 0], dtype=bool)
    scores = np.array([0.1, 0.9, 0.5, 0.5, 0.55, 0.1, 0.1, 0.1, 0.8, 0.5, 0.5, 0.1])
    t = best_event_f1_threshold(y, scores, np.zeros(12, dtype=int), beta=1.0)
    assert 0.55 < t <= 0.8  # both pumps caught by their first bar, the 0.55 bar between them stays quiet


def _bars(n: int = 60, seed: int = 0) -> np.ndarray:
    """(1, n, 5) open/high/low/close/volume of a quiet random walk whose opens equal the previous close."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))
    open_ = np.r_[close[0], close[:-1]]
    high, low = np.maximum(open_, close) * 1.0005, np.minimum(open_, close) * 0.9995
    return np.stack([open_, high, low, close, rng.lognormal(3, 0.2, n)], axis=-1)[None]


def test_candle_features_split_a_between_bar_jump_from_an_intra_bar_climb() -> None:
    col = {c: i for i, c in enumerate(CANDLE_MARKET_COLUMNS)}
    shift = _bars()
    shift[0, 40:, :4] *= 1.10  # level shift: bar 40 opens 10 % above bar 39's close
    shift[0, 40, 0] = shift[0, 39, 3] * 1.10
    climb = _bars()
    climb[0, 40:, :4] *= 1.10
    climb[0, 40, 0] = climb[0, 39, 3]  # pump bar: opens at the previous close and climbs 10 % inside
    climb[0, 40, 1] = climb[0, 40, 3] * 1.02  # with an upper wick
    m_shift, _, _ = candle_feature_arrays(shift, None)
    m_climb, _, _ = candle_feature_arrays(climb, None)
    assert m_shift[0, 40, col["gap"]] == pytest.approx(np.log(1.10), abs=1e-9)
    assert abs(m_shift[0, 40, col["body"]]) < 0.005
    assert abs(m_climb[0, 40, col["gap"]]) < 1e-9
    assert m_climb[0, 40, col["body"]] > 0.09 and m_climb[0, 40, col["upper_wick"]] > 0.019
    # same close-to-close return, so the same volatility-scaled return: many sigmas of a quiet coin
    assert m_shift[0, 40, col["ret"]] == pytest.approx(m_climb[0, 40, col["ret"]], rel=1e-6)
    assert m_climb[0, 40, col["ret_z"]] > 20


def test_candle_features_are_causal_and_ignore_time_of_day() -> None:
    bars = _bars(80, seed=3)
    social = np.random.default_rng(3).poisson(4, (1, 80)).astype(float)
    full = candle_feature_arrays(bars, social)
    prefix = candle_feature_arrays(bars[:, :50], social[:, :50])
    for a, b in zip(full, prefix, strict=True):
        np.testing.assert_allclose(a[:, :50], b, atol=1e-12)
    assert not any("hour" in c or "minute" in c for c in CANDLE_MARKET_COLUMNS)


def test_candle_ret_z_stays_finite_on_stale_candles() -> None:
    bars = _bars(50)
    bars[0, 10:40] = bars[0, 9]  # a stale run: the same candle repeated, zero volatility
    bars[0, 40, 3] *= 1.01
    market, _, _ = candle_feature_arrays(bars, None)
    assert np.isfinite(market).all()
    assert market[0, 40, CANDLE_MARKET_COLUMNS.index("ret_z")] == pytest.approx(50.0)  # clipped, not inf
