"""Social sources against local fakes; storage round trip; failures never stop a sync."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from core.config import SocialSourceConfig
from core.errors import ConfigError, DataSourceError
from feeds.social import build_social_sources, fetch_or_empty, sync_social
from storage.db import session_scope
from storage.social import load_social, load_social_many, upsert_social
from tests.fakes.social import FakeSocial

KEY = "sekrit-key"
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)
H = 3_600_000


def _series(n: int = 48, scale: float = 10.0) -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    return pd.Series(np.arange(n, dtype="float64") * scale, index=idx)


def _source(kind: str, _base: str, **options: object) -> object:
    return build_social_sources([SocialSourceConfig(name=f"{kind}-test", kind=kind, options=options)])[0]  # type: ignore[arg-type]


@pytest.fixture
def api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANTIMENT_API_KEY", KEY)
    monkeypatch.setenv("LUNARCRUSH_API_KEY", KEY)
    monkeypatch.setenv("GENERIC_KEY", KEY)


async def test_santiment_fetches_social_volume_total(api_keys: None) -> None:
    async with FakeSocial({"BTC": _series()}) as fake:
        src = _source("santiment", fake.url, url=fake.url + "/graphql")
        got = await src.fetch("BTC/USDT", T0 + 2 * H, T0 + 10 * H)  # type: ignore[attr-defined]
    assert fake.last_query["slug"] == "bitcoin"
    assert fake.last_query["interval"] == "1h"
    assert fake.last_query["from"] == "2024-01-01T02:00:00Z"
    assert len(got) == 8 and got.iloc[0] == 20.0
    assert str(got.index.tz) == "UTC"


async def test_lunarcrush_reads_posts_created_per_hour(api_keys: None) -> None:
    async with FakeSocial({"ETH": _series(scale=2.0)}) as fake:
        src = _source("lunarcrush", fake.url, url=fake.url)
        got = await src.fetch("ETH/USDT", T0, T0 + 5 * H)  # type: ignore[attr-defined]
    assert fake.last_query["bucket"] == "hour"
    assert fake.last_query["start"] == str(T0 // 1000)
    assert got.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


async def test_http_json_source_follows_configured_paths(api_keys: None) -> None:
    async with FakeSocial({"XRP": _series()}) as fake:
        src = _source(
            "http_json",
            fake.url,
            url_template=fake.url + "/generic/{base}?from={start_ms}&to={end_ms}",
            records_path="result.points",
            time_field="t",
            value_field="stats.mentions",
            time_unit="ms",
            api_key_env="GENERIC_KEY",
            auth_header="X-Api-Key",
            auth_prefix="",
        )
        got = await src.fetch("XRP/USDT", T0, T0 + 3 * H)  # type: ignore[attr-defined]
    assert got.tolist() == [0.0, 10.0, 20.0]


@pytest.mark.parametrize("kind", ["santiment", "lunarcrush", "http_json"])
async def test_social_auth_failure_names_source_not_key(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-key-123"
    for var in ("SANTIMENT_API_KEY", "LUNARCRUSH_API_KEY", "GENERIC_KEY"):
        monkeypatch.setenv(var, wrong)
    async with FakeSocial({"BTC": _series()}) as fake:
        options = {
            "santiment": {"url": fake.url + "/graphql"},
            "lunarcrush": {"url": fake.url},
            "http_json": {
                "url_template": fake.url + "/generic/{base}?from={start_ms}&to={end_ms}",
                "time_field": "t",
                "value_field": "v",
                "api_key_env": "GENERIC_KEY",
                "auth_header": "X-Api-Key",
                "auth_prefix": "",
            },
        }[kind]
        src = _source(kind, fake.url, **options)
        with pytest.raises(DataSourceError) as info:
            await src.fetch("BTC/USDT", T0, T0 + H)  # type: ignore[attr-defined]
    message = str(info.value)
    assert f"{kind}-test" in message and "authentication failed" in message
    assert wrong not in message


@pytest.mark.parametrize("kind", ["santiment", "lunarcrush"])
async def test_social_empty_answer_is_empty_series(kind: str, api_keys: None) -> None:
    async with FakeSocial({"BTC": _series()}) as fake:
        fake.empty = True
        src = _source(kind, fake.url, url=fake.url + ("/graphql" if kind == "santiment" else ""))
        got = await src.fetch("BTC/USDT", T0, T0 + 10 * H)  # type: ignore[attr-defined]
    assert got.empty and got.dtype == "float64"


async def test_santiment_unknown_slug_and_missing_key_are_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SANTIMENT_API_KEY", raising=False)
    src = _source("santiment", "", url="http://127.0.0.1:9/graphql")
    with pytest.raises(DataSourceError, match="SANTIMENT_API_KEY"):
        await src.fetch("BTC/USDT", T0, T0 + H)  # type: ignore[attr-defined]
    with pytest.raises(DataSourceError, match="no Santiment slug for 'PEPE'"):
        await src.fetch("PEPE/USDT", T0, T0 + H)  # type: ignore[attr-defined]


async def test_fetch_or_empty_logs_and_returns_nothing_on_failure(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LUNARCRUSH_API_KEY", "revoked-key-xyz")
    async with FakeSocial({"BTC": _series()}) as fake:
        src = _source("lunarcrush", fake.url, url=fake.url)
        with caplog.at_level(logging.WARNING):
            got = await fetch_or_empty(src, "BTC/USDT", T0, T0 + H)  # type: ignore[arg-type]
    assert got.empty
    assert "authentication failed" in caplog.text and "revoked-key-xyz" not in caplog.text


async def test_csv_source_reads_per_coin_files(tmp_path: Path) -> None:
    s = _series(10)
    pd.DataFrame({"timestamp_ms": s.index.as_unit("ms").asi8, "post_count": s.to_numpy()}).to_csv(
        tmp_path / "XRP_USDT.csv", index=False
    )
    src = _source("csv", "", path=str(tmp_path / "{symbol_file}.csv"))
    got = await src.fetch("XRP/USDT", T0 + H, T0 + 4 * H)  # type: ignore[attr-defined]
    assert got.tolist() == [10.0, 20.0, 30.0]
    with pytest.raises(DataSourceError, match="no such file"):
        await src.fetch("BTC/USDT", T0, T0 + H)  # type: ignore[attr-defined]


def test_parquet_source_without_pyarrow_names_the_package() -> None:
    if importlib.util.find_spec("pyarrow") is not None:
        pytest.skip("pyarrow is installed here")
    with pytest.raises(ConfigError, match="'pyarrow'"):
        _source("parquet", "", path="x.parquet")


async def test_csv_source_reads_shared_xrp_stocktwits_file(shared_data: Path) -> None:
    path = shared_data / "social" / "XRP_stocktwits_posts-1h.csv"
    src = _source("csv", "", path=str(path), value_column="post_count")
    start = int(pd.Timestamp("2022-01-07", tz="UTC").value // 1_000_000)
    got = await src.fetch("XRP/USDT", start, start + 24 * H)  # type: ignore[attr-defined]
    assert len(got) == 24 and (got >= 0).all()


def test_upsert_social_is_idempotent_and_load_filters(session_factory: sessionmaker[Session]) -> None:
    s = _series(6)
    with session_scope(session_factory) as session:
        upsert_social(session, "lc", "BTC/USDT", "social_volume", s)
        upsert_social(session, "lc", "BTC/USDT", "social_volume", s * 2)  # a revision replaces
    with session_scope(session_factory) as session:
        got = load_social(session, "BTC/USDT", start_ms=T0 + H, end_ms=T0 + 4 * H)
        everything = load_social(session, "BTC/USDT")
    assert got.tolist() == [20.0, 40.0, 60.0]
    assert len(everything) == 6


def test_load_social_sums_sources_sharing_a_timestamp(session_factory: sessionmaker[Session]) -> None:
    s = _series(4)
    with session_scope(session_factory) as session:
        upsert_social(session, "lc", "BTC/USDT", "social_volume", s)
        upsert_social(session, "san", "BTC/USDT", "social_volume", s.iloc[1:3] * 10)
    with session_scope(session_factory) as session:
        summed = load_social(session, "BTC/USDT")
        one = load_social(session, "BTC/USDT", source="san")
        none = load_social(session, "ETH/USDT")
    assert summed.tolist() == [0.0, 110.0, 220.0, 30.0]
    assert summed.index.equals(s.index)
    assert one.tolist() == [100.0, 200.0]
    assert none.empty and str(none.index.tz) == "UTC"
    start, end = int(s.index[1].value // 10**6), int(s.index[3].value // 10**6)
    with session_scope(session_factory) as session:
        many = load_social_many(session, ["BTC/USDT", "ETH/USDT"], start_ms=start, end_ms=end, chunk=1)
        one = load_social(session, "BTC/USDT", start_ms=start, end_ms=end)
    assert list(many) == ["BTC/USDT"]
    pd.testing.assert_series_equal(many["BTC/USDT"], one)


async def test_sync_social_stores_good_sources_and_skips_failing_ones(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SANTIMENT_API_KEY", KEY)
    monkeypatch.setenv("LUNARCRUSH_API_KEY", "revoked")
    async with FakeSocial({"BTC": _series(), "ETH": _series(scale=3.0)}) as fake:
        sources = build_social_sources(
            [
                SocialSourceConfig(name="san", kind="santiment", options={"url": fake.url + "/graphql"}),
                SocialSourceConfig(name="lc", kind="lunarcrush", options={"url": fake.url}),
            ]
        )
        result = await sync_social(sources, session_factory, ["BTC/USDT", "ETH/USDT"], T0, T0 + 6 * H)
        again = await sync_social(sources, session_factory, ["BTC/USDT", "ETH/USDT"], T0, T0 + 6 * H)
    assert result[("san", "BTC/USDT")] == 6 and result[("san", "ETH/USDT")] == 6
    assert isinstance(result[("lc", "BTC/USDT")], DataSourceError)
    assert again[("san", "BTC/USDT")] == 6
    with session_scope(session_factory) as session:
        eth = load_social(session, "ETH/USDT")
    assert eth.tolist() == [0.0, 3.0, 6.0, 9.0, 12.0, 15.0]


async def test_santiment_graphql_error_is_reported(api_keys: None) -> None:
    async with FakeSocial({"BTC": _series()}) as fake:
        src = _source("santiment", fake.url, url=fake.url + "/graphql", slugs={"DOGE": "dogecoin"})
        with pytest.raises(DataSourceError, match="Project with slug dogecoin not found"):
            await src.fetch("DOGE/USDT", T0, T0 + H)  # type: ignore[attr-defined]


async def test_social_server_error_and_timeout_name_the_source(api_keys: None) -> None:
    async with FakeSocial({"BTC": _series()}) as fake:
        src = _source("lunarcrush", fake.url, url=fake.url, timeout=0.2)
        fake.status = 500
        with pytest.raises(DataSourceError, match=r"'lunarcrush-test' \(lunarcrush\): HTTP 500"):
            await src.fetch("BTC/USDT", T0, T0 + H)  # type: ignore[attr-defined]
        fake.status, fake.delay = None, 1.0
        with pytest.raises(DataSourceError, match=r"'lunarcrush-test' \(lunarcrush\): no answer within 0.2s"):
            await src.fetch("BTC/USDT", T0, T0 + H)  # type: ignore[attr-defined]


def test_social_per_bar_sums_within_bars_and_keeps_unknown_as_nan() -> None:
    from feeds.social import attach_social, social_per_bar

    bars = pd.date_range("2024-01-01", periods=4, freq="h", tz="UTC")
    samples = pd.Series(
        [1.0, 2.0, 5.0, 7.0, 100.0],
        index=pd.DatetimeIndex(
            ["2023-12-31 23:30", "2024-01-01 00:00", "2024-01-01 00:59", "2024-01-01 02:10", "2024-01-01 04:00"],
            tz="UTC",
        ),
    )
    got = social_per_bar(samples, bars, "1h")
    assert got.iloc[0] == 7.0  # 2 + 5, the 23:30 sample belongs to no bar here
    assert np.isnan(got.iloc[1])  # no sample: unknown, not zero
    assert got.iloc[2] == 7.0
    assert np.isnan(got.iloc[3])  # 04:00 is after the last bar closed
    frame = attach_social(pd.DataFrame({"close": [1.0, 2.0, 3.0, 4.0]}, index=bars), samples, "1h")
    assert frame["social_volume"].iloc[2] == 7.0 and "close" in frame


def test_build_social_sources_accepts_the_config_example() -> None:
    """The commented [[social]] examples in config.example.toml stay valid."""
    import tomllib

    from core.config import default_config

    text = (Path(__file__).resolve().parents[2] / "config.example.toml").read_text(encoding="utf-8")
    block = text[text.index("# [[social]]") : text.index("# Detectors:")]
    uncommented = "\n".join(line[2:] if line.startswith("# ") else "" for line in block.splitlines())
    cfg = default_config(social=tomllib.loads(uncommented)["social"])
    kinds = [type(s).__name__ for s in build_social_sources(cfg.social)]
    assert kinds == ["SantimentSource", "LunarCrushSource", "FileSocialSource", "HttpJsonSource"]
