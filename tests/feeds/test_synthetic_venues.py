"""The multi-venue synthetic market and the real-candle replay: invariants, labels, determinism, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import InputError
from feeds.synthetic_venues import VENUE_KINDS, generate_venue_market, replay_as_venues


@pytest.fixture(scope="module")
def market():
    return generate_venue_market(6, ("binance", "okx", "kraken"), days=40, seed=3, dislocation_rate=1 / 150)


def _valid_candles(frame: pd.DataFrame) -> None:
    assert np.isfinite(frame.to_numpy()).all()
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1) * (1 - 1e-12)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1) * (1 + 1e-12)).all()
    assert (frame["low"] > 0).all() and (frame["volume"] >= 0).all()


def test_venue_market_has_every_asset_on_every_venue_with_usd_quotes_mapped(market) -> None:
    assert len(market.groups) == 6
    for group, members in market.groups.items():
        assert [m.split(":")[0] for m in members] == ["binance", "okx", "kraken"]
        base = group.split("/")[0]
        assert members[2] == f"kraken:{base}/USD" and members[0] == f"binance:{base}/USDT"
        index = market.candles[members[0]].index
        for m in members:
            frame = market.candles[m]
            assert frame.index.equals(index)
            _valid_candles(frame)


def test_venues_of_one_asset_stay_close_outside_planted_dislocations(market) -> None:
    for group, members in market.groups.items():
        logs = np.log(np.stack([market.candles[m]["close"].to_numpy() for m in members], axis=1))
        spread = np.abs(logs - np.median(logs, axis=1, keepdims=True)).max(axis=1)
        index = market.candles[members[0]].index
        inside = np.zeros(len(index), dtype=bool)
        for row in market.labels[market.labels["group"] == group].itertuples():
            inside |= (index >= row.start) & (index <= row.end)
        # noise (bounce, lags, basis) is a few basis points, planted dislocations are percent
        assert np.quantile(spread[~inside], 0.99) < 0.01
        if inside.any():
            assert spread[inside].max() > 0.01


def test_labels_name_one_venue_each_do_not_overlap_and_skip_the_warmup(market) -> None:
    labels = market.labels
    assert len(labels) >= 6 and set(labels["kind"]) <= set(VENUE_KINDS)
    first = next(iter(market.candles.values())).index
    warm = first[int(0.2 * len(first))]
    assert (labels["start"] >= warm).all() and (labels["end"] >= labels["start"]).all()
    for _, rows in labels.groupby("group"):
        rows = rows.sort_values("start")
        assert (rows["start"].iloc[1:].to_numpy() > rows["end"].iloc[:-1].to_numpy()).all()
    for row in labels.itertuples():
        assert f"{row.venue}:{row.symbol}" in market.groups[row.group]


def test_the_labelled_venue_is_the_one_displaced(market) -> None:
    for row in market.labels.itertuples():
        members = market.groups[row.group]
        key = f"{row.venue}:{row.symbol}"
        window = slice(row.start, row.end)
        own = np.log(market.candles[key]["close"].loc[window].to_numpy())
        peers = [np.log(market.candles[m]["close"].loc[window].to_numpy()) for m in members if m != key]
        gap = np.abs(own - np.median(peers, axis=0)).max()
        peer_gap = np.abs(peers[0] - peers[1]).max()
        assert gap > 0.01 > peer_gap, (row.kind, gap, peer_gap)


def test_venue_market_is_deterministic_per_seed() -> None:
    a = generate_venue_market(2, days=20, seed=11)
    b = generate_venue_market(2, days=20, seed=11)
    c = generate_venue_market(2, days=20, seed=12)
    for key in a.candles:
        pd.testing.assert_frame_equal(a.candles[key], b.candles[key])
    pd.testing.assert_frame_equal(a.labels, b.labels)
    assert not np.allclose(a.candles[next(iter(a.candles))]["close"], c.candles[next(iter(c.candles))]["close"])


def test_replay_as_venues_keeps_the_real_path_and_adds_only_small_noise(make_candles) -> None:
    frame = make_candles(600, seed=2)
    venues = replay_as_venues(frame, ("a", "b", "c"), seed=1, timeframe="1h", usd_venues=("c",))
    assert list(venues) == ["a", "b", "c"]
    for venue in venues.values():
        assert venue.index.equals(frame.index)
        _valid_candles(venue)
        diff = np.abs(np.log(venue["close"].to_numpy()) - np.log(frame["close"].to_numpy()))
        assert np.quantile(diff, 0.99) < 0.01
    total = sum(v["volume"] for v in venues.values())
    assert np.isclose(np.median(total / frame["volume"]), 1.0, rtol=0.2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"venues": ("binance",)}, "venues: need at least 2"),
        ({"venues": ("okx", "okx", "kraken")}, "duplicated venue(s) okx"),
        ({"kinds": ("venue_moon",)}, "kinds: expected a non-empty subset"),
        ({"dislocation_rate": 0.5}, "dislocation_rate"),
    ],
)
def test_venue_market_rejects_bad_arguments_naming_them(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        generate_venue_market(2, days=10, **kwargs)


def test_vigil_synth_writes_one_folder_per_venue(tmp_path) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from bot.cli.root import app
    from storage.candle_csv import read_candle_csv

    r = CliRunner().invoke(
        app, ["synth", "--out", str(tmp_path), "--symbols", "2", "--days", "20", "--venues", "binance,kraken,okx"]
    )
    assert r.exit_code == 0, r.output
    assert "6 venue series (2 groups)" in r.output
    assert (tmp_path / "kraken" / "SYN000_USD-1h.csv").is_file() and (tmp_path / "okx" / "SYN001_USDT-1h.csv").is_file()
    groups = pd.read_csv(tmp_path / "groups.csv")
    assert len(groups) == 6 and set(groups["venue"]) == {"binance", "kraken", "okx"}
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["group", "venue", "symbol", "start", "end", "kind"]
    assert len(read_candle_csv(tmp_path / "binance" / "SYN000_USDT-1h.csv")) == 480
