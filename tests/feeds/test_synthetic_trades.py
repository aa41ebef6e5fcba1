"""The synthetic trade tape: deterministic, consecutive ids, and pumps made of rush orders."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import InputError
from feeds.synthetic_trades import generate_trades


def test_same_seed_same_tape_and_labels() -> None:
    a = generate_trades(3, minutes=20, seed=5, pumps_per_hour=2)
    b = generate_trades(3, minutes=20, seed=5, pumps_per_hour=2)
    assert a.trades.equals(b.trades) and a.labels.equals(b.labels)
    assert not generate_trades(3, minutes=20, seed=6).trades.equals(a.trades)


def test_ids_are_consecutive_per_symbol_and_in_time_order() -> None:
    tape = generate_trades(4, minutes=15, seed=1)
    for symbol in tape.symbols:
        rows = tape.for_symbol(symbol)
        assert (np.diff(rows["id"].to_numpy()) == 1).all()
        assert (np.diff(rows["timestamp"].to_numpy()) >= 0).all()
    assert tape.trades["timestamp"].between(tape.start_ms, tape.end_ms).all()


def test_pumps_bring_rush_orders_and_a_price_rise_before_the_peak() -> None:
    tape = generate_trades(8, minutes=60, seed=2, pumps_per_hour=3, negatives_per_hour=0)
    pumps = tape.pumps()
    assert len(pumps) >= 3
    assert (pumps["start"] >= tape.start_ms + 10 * 60_000).all()  # quiet start for the rolling windows
    for pump in pumps.itertuples():
        trades = tape.for_symbol(pump.symbol)
        buys = trades[trades["side"] == "buy"]
        fills = buys.groupby("timestamp").size()  # one market order per millisecond
        rush_ms = fills[fills > 1].index.to_numpy()
        rate_before = ((rush_ms >= pump.start - 120_000) & (rush_ms < pump.start)).sum() / 120
        rate_rising = ((rush_ms >= pump.start) & (rush_ms <= pump.peak)).sum() / ((pump.peak - pump.start) / 1000)
        assert rate_rising > 5 * max(rate_before, 0.05)
        p0 = trades[trades["timestamp"] < pump.start]["price"].iloc[-1]
        top = trades[(trades["timestamp"] >= pump.start) & (trades["timestamp"] <= pump.peak)]["price"].max()
        assert top / p0 > 1.04


def test_bad_arguments_name_the_value() -> None:
    with pytest.raises(InputError, match="minutes"):
        generate_trades(2, minutes=1)
    with pytest.raises(InputError, match="pumps_per_hour"):
        generate_trades(2, minutes=30, pumps_per_hour=-1)
