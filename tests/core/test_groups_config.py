"""``[[groups]]``: one asset on several exchanges becomes tagged watchlist entries; bad groups are named."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from core.config import default_config
from core.errors import ConfigError


def test_a_group_expands_into_watchlist_entries_with_quotes_mapped() -> None:
    cfg = default_config(
        watchlist=[{"exchange": "binance", "symbol": "ETH/USDT"}],
        groups=[
            {
                "symbol": "btc/usdt",
                "exchanges": ["binance", "okx", "kraken"],
                "symbols": {"kraken": "btc/usd"},
                "book_depth": 50,
            }
        ],
    )
    assert [(e.exchange, e.symbol, e.group, e.book_depth) for e in cfg.watchlist] == [
        ("binance", "ETH/USDT", None, None),
        ("binance", "BTC/USDT", "BTC", 50),
        ("okx", "BTC/USDT", "BTC", 50),
        ("kraken", "BTC/USD", "BTC", 50),
    ]


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({"symbol": "BTC/USDT", "exchanges": ["binance"]}, "exchanges: List should have at least 2"),
        ({"symbol": "BTC/USDT", "exchanges": ["binance", "binance"]}, "binance listed twice"),
        ({"symbol": "BTC/USDT", "exchanges": ["binance", "okx"], "symbols": {"kraken": "BTC/USD"}}, "kraken not in"),
        ({"symbol": "BTC", "exchanges": ["binance", "okx"]}, "expected BASE/QUOTE"),
        ({"symbol": "BTC/USDT", "exchanges": ["binance", "gdax"]}, "groups ('BTC', gdax).exchange: 'gdax'"),
    ],
)
def test_bad_groups_are_named(group: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        default_config(exchanges={"binance": {}, "okx": {}}, groups=[group])


def test_a_market_in_two_groups_or_two_groups_of_one_name_are_refused() -> None:
    g = {"symbol": "BTC/USDT", "exchanges": ["binance", "okx"]}
    with pytest.raises(ConfigError, match="duplicate entry 'binance/BTC/USDT/1h'"):
        default_config(groups=[g, {**g, "name": "other"}])
    with pytest.raises(ConfigError, match="two groups named 'BTC' on 1h"):
        default_config(groups=[g, {**g, "symbol": "BTC/USDC"}])


def test_the_config_example_group_is_valid() -> None:
    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [[groups]]") : text.index("# On-chain metrics")]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else "" for line in block.splitlines())
    cfg = default_config(groups=tomllib.loads(uncommented)["groups"])
    assert [e.symbol for e in cfg.watchlist] == ["BTC/USDT", "BTC/USDT", "BTC/USD", "BTC/USD"]
