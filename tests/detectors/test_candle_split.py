"""The real-candle tuning/held-out split is fixed by file names alone and stratified by timeframe."""

from __future__ import annotations

from detectors.candle_split import HELDOUT, TUNING, candle_split

# The held-out part of ../shared/data/candles, pinned: the split must never move.
PINNED_HELDOUT = {
    "ADA_USDT-1h.csv",
    "BNB_USDT-1h.csv",
    "DOT_USDT-1h.csv",
    "LTC_BTC-5m.csv",
    "NXT_BTC-5m.csv",
    "TRX_BTC-5m.csv",
    "XMR_BTC-5m.csv",
    "XRP_ETH-5m.csv",
}
SHARED = [
    "ADA_BTC-5m.csv", "ADA_USDT-1h.csv", "BNB_USDT-1h.csv", "BTC_USDT-1h.csv", "DASH_BTC-5m.csv",
    "DOT_USDT-1h.csv", "ETC_BTC-5m.csv", "ETH_BTC-5m.csv", "ETH_USDT-1h.csv", "LTC_BTC-5m.csv",
    "NXT_BTC-5m.csv", "SOL_USDT-1h.csv", "TRX_BTC-5m.csv", "XLM_BTC-5m.csv", "XMR_BTC-5m.csv",
    "XRP_ETH-1m.csv", "XRP_ETH-5m.csv", "XRP_USDT-1h.csv", "ZEC_BTC-5m.csv",
]  # fmt: skip


def test_the_shared_candle_split_is_pinned() -> None:
    split = candle_split(SHARED)
    assert {name for name, part in split.items() if part == HELDOUT} == PINNED_HELDOUT
    five = [name for name in SHARED if name.endswith("-5m.csv")]
    assert sum(split[n] == TUNING for n in five) == 6 and sum(split[n] == HELDOUT for n in five) == 5


def test_split_depends_on_names_only_and_halves_each_timeframe() -> None:
    names = [f"C{i}_USDT-5m.csv" for i in range(9)] + [f"C{i}_USDT-1h.csv" for i in range(4)]
    split = candle_split(names)
    assert split == candle_split(list(reversed(names)))
    assert sum(split[n] == TUNING for n in names if n.endswith("5m.csv")) == 5
    assert sum(split[n] == TUNING for n in names if n.endswith("1h.csv")) == 2
