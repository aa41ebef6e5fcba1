"""On-chain sources against local fakes of Coin Metrics, Blockchair and Glassnode; storage; alignment."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.config import OnchainSourceConfig, default_config
from core.errors import ConfigError, DataSourceError
from feeds.onchain import build_onchain_sources, metric_per_bar, onchain_column, sync_onchain
from storage.social import load_social
from tests.fakes.onchain import FakeOnchain

DAY = 86_400_000
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)
SECRET = "gn-key"


def _daily(n: int = 30, scale: float = 1000.0) -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")
    return pd.Series(np.arange(1, n + 1, dtype="float64") * scale, index=idx)


def _series() -> dict[tuple[str, str], pd.Series]:
    return {
        ("BTC", "AdrActCnt"): _daily(),
        ("ETH", "AdrActCnt"): _daily(scale=10.0),
        ("BTC", "tx_count"): _daily(scale=300.0),
        ("BTC", "addresses/active_count"): _daily(scale=7.0),
    }


def _source(kind: str, metric: str = "active_addresses", **options: object):  # noqa: ANN202
    cfg = OnchainSourceConfig(name=f"{kind}-test", kind=kind, metric=metric, options=options)  # type: ignore[arg-type]
    return build_onchain_sources([cfg])[0]


@pytest.fixture
def glassnode_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSNODE_API_KEY", SECRET)


async def test_coinmetrics_reads_string_values_across_pages() -> None:
    async with FakeOnchain(_series()) as fake:
        src = _source("coinmetrics", coinmetrics_metric="AdrActCnt", url=fake.url + "/v4", page_size=7)
        got = await src.fetch("BTC/USDT", T0 + 2 * DAY, T0 + 20 * DAY)
    assert fake.requests["coinmetrics"] == 3  # 18 days in pages of 7
    assert fake.last_query["assets"] == "btc" and fake.last_query["frequency"] == "1d"
    assert got.index[0] == pd.Timestamp("2024-01-03", tz="UTC") and len(got) == 18
    assert got.iloc[0] == 3000.0 and got.name == "active_addresses"


async def test_coinmetrics_unknown_metric_is_an_error_naming_it() -> None:
    async with FakeOnchain(_series()) as fake:
        src = _source("coinmetrics", coinmetrics_metric="AdrActCntX", url=fake.url + "/v4")
        with pytest.raises(DataSourceError, match="coinmetrics-test.*HTTP 400.*AdrActCntX"):
            await src.fetch("BTC/USDT", T0, T0 + 5 * DAY)


async def test_coinmetrics_pro_key_failure_names_the_variable_not_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CM_KEY", "wrong-secret")
    async with FakeOnchain(_series(), cm_key="right") as fake:
        src = _source("coinmetrics", coinmetrics_metric="AdrActCnt", url=fake.url + "/v4", api_key_env="CM_KEY")
        with pytest.raises(DataSourceError, match=r"authentication failed \(HTTP 401\).*\$CM_KEY") as err:
            await src.fetch("BTC/USDT", T0, T0 + 5 * DAY)
    assert "wrong-secret" not in str(err.value)


async def test_blockchair_aggregates_transactions_per_day() -> None:
    async with FakeOnchain(_series()) as fake:
        src = _source("blockchair", metric="tx_count", url=fake.url)
        got = await src.fetch("BTC/USD", T0 + DAY, T0 + 4 * DAY)
    assert fake.last_query["a"] == "date,sum(transaction_count)"
    assert fake.last_query["q"] == "time(2024-01-02..2024-01-04)"
    assert got.tolist() == [600.0, 900.0, 1200.0]


async def test_blockchair_needs_a_chain_for_tokens() -> None:
    src = _source("blockchair", metric="tx_count", url="http://127.0.0.1:9")
    with pytest.raises(DataSourceError, match="no Blockchair chain for 'PEPE'"):
        await src.fetch("PEPE/USDT", T0, T0 + DAY)


async def test_glassnode_reads_points_with_the_key(glassnode_key: None) -> None:
    async with FakeOnchain(_series()) as fake:
        src = _source("glassnode", path="addresses/active_count", url=fake.url)
        got = await src.fetch("BTC/USDT", T0, T0 + 3 * DAY)
    assert fake.last_query["a"] == "BTC" and fake.last_query["i"] == "24h"
    assert got.tolist() == [7.0, 14.0, 21.0]


async def test_glassnode_auth_failure_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSNODE_API_KEY", "not-it")
    async with FakeOnchain(_series()) as fake:
        src = _source("glassnode", path="addresses/active_count", url=fake.url)
        with pytest.raises(DataSourceError, match=r"authentication failed.*\$GLASSNODE_API_KEY") as err:
            await src.fetch("BTC/USDT", T0, T0 + 3 * DAY)
        assert "not-it" not in str(err.value)
        monkeypatch.delenv("GLASSNODE_API_KEY")
        with pytest.raises(DataSourceError, match="GLASSNODE_API_KEY.*is not set"):
            await src.fetch("BTC/USDT", T0, T0 + 3 * DAY)


@pytest.mark.parametrize(
    ("status", "message"),
    [(429, r"rate limited \(HTTP 429\)"), (402, "daily request limit"), (430, "blocked by the provider")],
)
async def test_rate_limits_and_bans_are_named(glassnode_key: None, status: int, message: str) -> None:
    async with FakeOnchain(_series()) as fake:
        fake.status = status
        chair = _source("blockchair", metric="tx_count", url=fake.url)
        with pytest.raises(DataSourceError, match=message):
            await chair.fetch("BTC/USDT", T0, T0 + 3 * DAY)
        if status == 429:
            for src in (
                _source("coinmetrics", coinmetrics_metric="AdrActCnt", url=fake.url + "/v4"),
                _source("glassnode", path="addresses/active_count", url=fake.url),
            ):
                with pytest.raises(DataSourceError, match=message):
                    await src.fetch("BTC/USDT", T0, T0 + 3 * DAY)


async def test_empty_answers_are_empty_series_for_every_provider(glassnode_key: None) -> None:
    async with FakeOnchain(_series()) as fake:
        fake.empty = True
        sources = [
            _source("coinmetrics", coinmetrics_metric="AdrActCnt", url=fake.url + "/v4"),
            _source("blockchair", metric="tx_count", url=fake.url),
            _source("glassnode", path="addresses/active_count", url=fake.url),
        ]
        for src in sources:
            got = await src.fetch("BTC/USDT", T0, T0 + 3 * DAY)
            assert got.empty and str(got.index.tz) == "UTC"


async def test_sync_stores_per_asset_and_a_failing_source_does_not_stop_the_others(
    session_factory: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeOnchain(_series()) as fake:
        good = _source("coinmetrics", coinmetrics_metric="AdrActCnt", url=fake.url + "/v4")
        bad = _source("glassnode", path="addresses/active_count", url=fake.url)  # no key in the environment
        with caplog.at_level(logging.WARNING):
            out = await sync_onchain(
                [bad, good], session_factory, ["BTC/USDT", "BTC/USD", "ETH/USDT"], T0, T0 + 5 * DAY
            )
    assert out[("coinmetrics-test", "BTC")] == 5 and out[("coinmetrics-test", "ETH")] == 5
    assert isinstance(out[("glassnode-test", "BTC")], DataSourceError)
    with session_factory() as s:
        stored = load_social(s, "BTC", metric="active_addresses", source="coinmetrics-test")
    assert stored.tolist() == [1000.0, 2000.0, 3000.0, 4000.0, 5000.0]
    assert "glassnode-test" in caplog.text


def test_a_daily_value_reaches_bars_only_after_its_day_closed() -> None:
    days = _daily(5)
    bars = pd.date_range("2024-01-01", periods=5 * 24, freq="h", tz="UTC")
    aligned = metric_per_bar(days, bars, period_ms=DAY)
    assert aligned.iloc[:24].isna().all()  # day 1 is being counted all day 1
    assert (aligned.iloc[24:48] == 1000.0).all()  # known from 2024-01-02 00:00 on
    assert aligned.iloc[48] == 2000.0
    delayed = metric_per_bar(days, bars, period_ms=DAY, delay_ms=6 * 3_600_000)
    assert delayed.iloc[24:30].isna().all() and delayed.iloc[30] == 1000.0
    stale = metric_per_bar(days.iloc[:1], bars, period_ms=DAY, max_age=2)
    assert stale.iloc[24:72].notna().all() and stale.iloc[72:].isna().all()
    assert onchain_column("tx_count") == "onchain_tx_count"


def test_onchain_config_rejects_bad_entries() -> None:
    with pytest.raises(ConfigError, match="onchain\\[0\\].metric"):
        default_config(onchain=[{"name": "x", "kind": "coinmetrics", "metric": "Active Addresses"}])
    with pytest.raises(ConfigError, match="duplicate source name 'x'"):
        default_config(
            onchain=[
                {"name": "x", "kind": "blockchair", "metric": "tx"},
                {"name": "x", "kind": "blockchair", "metric": "t"},
            ]
        )
    with pytest.raises(ConfigError, match="coinmetrics_metric is required"):
        _source("coinmetrics")
    with pytest.raises(ConfigError, match="options.path is required"):
        _source("glassnode")


def test_the_config_example_onchain_sources_are_valid() -> None:
    """The commented [[onchain]] examples in config.example.toml build."""
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [[onchain]]") : text.index("# Social volume sources")]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else "" for line in block.splitlines())
    cfg = default_config(onchain=tomllib.loads(uncommented)["onchain"])
    kinds = [type(s).__name__ for s in build_onchain_sources(cfg.onchain)]
    assert kinds == ["CoinMetricsSource", "BlockchairSource", "GlassnodeSource"]
