"""The synthetic market: candle invariants, determinism, anomaly placement and shapes, stylized facts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from core.timeframes import timeframe_to_ms
from feeds.synthetic import ALL_KINDS, FAULT_KINDS, MARKET_KINDS, generate_market
from feeds.synthetic_stats import stylized_facts


@pytest.fixture(scope="module")
def market():
    """20 symbols x 120 days of 1h bars with a raised anomaly rate: many labels of every kind."""
    return generate_market(20, 120, "1h", seed=7, anomaly_rate=1 / 100)


def _label_rows(market, kind: str):
    return market.labels[market.labels["kind"] == kind].itertuples(index=False)


@pytest.mark.parametrize(("timeframe", "days"), [("1m", 2), ("5m", 5), ("1h", 30), ("4h", 120), ("1d", 400)])
def test_generate_market_candles_are_valid_at_every_timeframe(timeframe: str, days: float) -> None:
    mk = generate_market(4, days, timeframe, seed=1, anomaly_rate=1 / 50)
    assert mk.timeframe == timeframe and mk.seed == 1
    assert set(mk.labels["kind"]) <= set(ALL_KINDS)
    for frame in mk.candles.values():
        assert list(frame.columns) == ["open", "high", "low", "close", "volume", "social_volume"]
        assert str(frame.index.tz) == "UTC" and frame.index.is_monotonic_increasing
        assert np.isfinite(frame.to_numpy()).all()
        assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
        assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
        assert (frame["low"] > 0).all()
        assert (frame["volume"] >= 0).all()
        step = pd.Timedelta(milliseconds=timeframe_to_ms(timeframe))
        assert ((frame.index - frame.index[0]) % step == pd.Timedelta(0)).all()


def test_generate_market_open_equals_previous_close_except_at_labelled_breaks(market) -> None:
    for symbol, frame in market.candles.items():
        prev_close = frame["close"].shift(1)
        broken = frame.index[1:][~np.isclose(frame["open"].iloc[1:], prev_close.iloc[1:], rtol=1e-12)]
        allowed = set()
        step = pd.Timedelta("1h")
        for row in market.labels[market.labels["symbol"] == symbol].itertuples(index=False):
            if row.kind == "level_shift":
                allowed.add(row.start)
            elif row.kind == "gap":
                allowed.add(row.end + step)  # first bar after the hole
            elif row.kind == "stale":
                allowed |= set(pd.date_range(row.start, row.end + step, freq=step))
        assert set(broken) <= allowed, (symbol, sorted(set(broken) - allowed)[:3])
        assert len(broken) > 0 or not allowed


def test_generate_market_same_seed_is_identical_and_other_seed_differs() -> None:
    a = generate_market(5, 20, "1h", seed=3)
    b = generate_market(5, 20, "1h", seed=3)
    c = generate_market(5, 20, "1h", seed=4)
    for symbol in a.candles:
        pd.testing.assert_frame_equal(a.candles[symbol], b.candles[symbol])
        assert not a.candles[symbol]["close"].equals(c.candles[symbol]["close"])
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert not a.labels.equals(c.labels)


def test_generate_market_labels_never_overlap_and_skip_the_training_fifth(market) -> None:
    labels = market.labels
    assert list(labels.columns) == ["symbol", "start", "end", "kind"]
    assert str(labels["start"].dt.tz) == "UTC"
    assert (labels["end"] >= labels["start"]).all()
    assert set(labels["kind"]) == set(ALL_KINDS)
    first = market.candles[labels["symbol"].iloc[0]].index[0]
    cutoff = first + 0.2 * pd.Timedelta(days=120)
    assert (labels["start"] >= cutoff).all()
    for _symbol, group in labels.groupby("symbol"):
        group = group.sort_values("start")
        assert (group["start"].iloc[1:].to_numpy() > group["end"].iloc[:-1].to_numpy()).all()


def test_anomaly_rate_controls_how_many_labels_are_planted() -> None:
    clean = generate_market(5, 60, "1h", seed=2, anomaly_rate=0)
    few = generate_market(5, 60, "1h", seed=2, anomaly_rate=1 / 500)
    many = generate_market(5, 60, "1h", seed=2, anomaly_rate=1 / 60)
    assert clean.labels.empty and list(clean.labels.columns) == ["symbol", "start", "end", "kind"]
    assert all(len(f) == 60 * 24 for f in clean.candles.values())  # no gaps without faults
    assert 0 < len(few.labels) < len(many.labels)


def test_kinds_and_faults_choose_what_is_planted() -> None:
    only = generate_market(6, 60, "1h", seed=5, anomaly_rate=1 / 100, kinds=["pump_dump", "gap"])
    assert set(only.labels["kind"]) == {"pump_dump", "gap"}
    no_faults = generate_market(6, 60, "1h", seed=5, anomaly_rate=1 / 100, faults=False)
    assert set(no_faults.labels["kind"]) <= set(MARKET_KINDS)
    assert not set(no_faults.labels["kind"]) & set(FAULT_KINDS)
    with pytest.raises(InputError, match="rug_pull"):
        generate_market(2, 10, kinds=["pump_dump", "rug_pull"])


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"symbols": 0}, "symbols"),
        ({"symbols": ["A/USDT", "A/USDT"]}, "A/USDT"),
        ({"days": -1}, "days"),
        ({"timeframe": "1x"}, "1x"),
        ({"anomaly_rate": -0.1}, "anomaly_rate"),
        ({"days": 0.5, "timeframe": "1d"}, "at least 30"),
    ],
)
def test_generate_market_rejects_bad_arguments_by_name(kwargs: dict, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        generate_market(**kwargs)


def test_generate_market_accepts_symbol_names() -> None:
    mk = generate_market(["BTC/USDT", "PEPE/USDT"], 5, "1h", seed=0)
    assert mk.symbols == ["BTC/USDT", "PEPE/USDT"]


def test_gap_removes_the_labelled_rows_and_stale_repeats_the_last_candle(market) -> None:
    for row in _label_rows(market, "gap"):
        index = market.candles[row.symbol].index
        assert not ((index >= row.start) & (index <= row.end)).any()
        assert row.start - pd.Timedelta("1h") in index and row.end + pd.Timedelta("1h") in index
    cols = ["open", "high", "low", "close", "volume"]
    for row in _label_rows(market, "stale"):
        frame = market.candles[row.symbol]
        before = frame.loc[: row.start - pd.Timedelta("1h"), cols].iloc[-1].to_numpy()
        run = frame.loc[row.start : row.end, cols].to_numpy()
        assert len(run) >= 3 and (run == before).all()


def test_pump_dump_social_burst_leads_the_price_spike(market) -> None:
    rows = list(_label_rows(market, "pump_dump"))
    assert len(rows) >= 10
    social_led = 0
    for row in rows:
        frame = market.candles[row.symbol]
        window = frame.loc[row.start : row.end]
        ret = np.log(window["close"] / window["open"])
        spike = ret.idxmax()
        assert spike > row.start  # price spike at least one bar after the burst starts
        baseline = frame.loc[: row.start - pd.Timedelta("1h"), "social_volume"].iloc[-48:].median()
        social_led += window["social_volume"].iloc[0] > 3 * max(baseline, 1.0)
        peak = window["close"].max() / window["open"].iloc[0]
        assert 1.05 < peak < 1.6, (row, peak)
        assert window["close"].iloc[-1] < window["close"].max() * 0.95  # and it dumps
        pre_volume = frame.loc[: row.start - pd.Timedelta("1h"), "volume"].iloc[-48:].median()
        assert window["volume"].loc[spike:].max() > 3 * pre_volume
    assert social_led >= 0.9 * len(rows)


def test_flash_crash_drops_sharply_then_partly_recovers(market) -> None:
    rows = list(_label_rows(market, "flash_crash"))
    assert rows
    for row in rows:
        window = market.candles[row.symbol].loc[row.start : row.end]
        drop = window["close"].iloc[0] / window["open"].iloc[0]
        assert 0.74 < drop < 0.93
        assert window["close"].iloc[0] < window["close"].iloc[-1] < window["open"].iloc[0]


def test_volume_spike_multiplies_volume_without_a_price_move(market) -> None:
    rows = list(_label_rows(market, "volume_spike"))
    assert rows
    for row in rows:
        frame = market.candles[row.symbol]
        before = frame.loc[: row.start - pd.Timedelta("1h")].iloc[-100:]
        window = frame.loc[row.start : row.end]
        assert window["volume"].max() > 3 * before["volume"].median()
        sigma = np.log(before["close"]).diff().std()
        assert (np.log(window["close"] / window["open"]).abs() < 8 * sigma).all()


def test_level_shift_moves_the_price_level_persistently(market) -> None:
    rows = list(_label_rows(market, "level_shift"))
    assert rows
    for row in rows:
        frame = market.candles[row.symbol]
        prev_close = frame.loc[: row.start - pd.Timedelta("1h"), "close"].iloc[-1]
        jump = abs(np.log(frame.loc[row.start, "open"] / prev_close))
        assert np.log(1.04) < jump < np.log(1.5)


def test_social_volume_is_overdispersed_counts_that_follow_volume() -> None:
    mk = generate_market(6, 60, "1h", seed=11, anomaly_rate=0)
    for frame in mk.candles.values():
        social = frame["social_volume"]
        assert (social >= 0).all() and (social == social.round()).all()
        assert social.var() > 1.5 * social.mean()
        assert social.corr(frame["volume"], method="spearman") > 0.2


def test_symbols_differ_in_price_level_and_volatility() -> None:
    mk = generate_market(12, 60, "1h", seed=13, anomaly_rate=0)
    levels = np.array([f["close"].median() for f in mk.candles.values()])
    vols = np.array([np.log(f["close"]).diff().std() for f in mk.candles.values()])
    assert levels.max() / levels.min() > 100
    assert vols.max() / vols.min() > 1.5


def test_clean_market_has_crypto_stylized_facts() -> None:
    mk = generate_market(8, 180, "1h", seed=17, anomaly_rate=0)
    facts = pd.DataFrame([stylized_facts(f) for f in mk.candles.values()]).median()
    assert facts["excess_kurtosis"] > 3  # heavy tails
    assert facts["acf_abs_lag1"] > 0.15  # volatility clustering
    assert facts["spearman_volume_absret"] > 0.2
    assert 0.003 < facts["median_range"] < 0.04


def test_daily_cycle_in_volatility_and_volume() -> None:
    mk = generate_market(8, 120, "1h", seed=19, anomaly_rate=0)
    frame = pd.concat([f.assign(rel_volume=f["volume"] / f["volume"].median()) for f in mk.candles.values()])
    hour = frame.index.hour
    absret = np.log(frame["close"] / frame["open"]).abs()
    rel_volume = frame["rel_volume"]
    peak, trough = hour.isin([14, 15, 16]), hour.isin([2, 3, 4])
    assert absret[peak].median() > 1.2 * absret[trough].median()
    assert rel_volume[peak].median() > rel_volume[trough].median()


@pytest.mark.parametrize(("timeframe", "days"), [("1m", 3), ("1d", 1500)])
def test_pumps_and_crashes_stand_out_at_short_and_long_timeframes(timeframe: str, days: float) -> None:
    mk = generate_market(6, days, timeframe, seed=23, anomaly_rate=1 / 40, kinds=["pump_dump", "flash_crash"])
    assert set(mk.labels["kind"]) == {"pump_dump", "flash_crash"}
    for row in mk.labels.itertuples(index=False):
        frame = mk.candles[row.symbol]
        ret = np.log(frame["close"] / frame["open"])
        normal = ret.iloc[: len(ret) // 5].std()  # the anomaly-free training fifth
        path = np.concatenate([[0.0], ret.loc[row.start : row.end].cumsum()])  # log price from the first open
        run_up = path - np.minimum.accumulate(path)  # rise from the lowest point so far
        drawdown = np.maximum.accumulate(path) - path
        move = run_up.max() if row.kind == "pump_dump" else drawdown.max()
        assert move > 3 * normal, (row, move, normal)
        assert move < np.log(3.0)  # daily small caps can add a lot of ordinary noise on top
