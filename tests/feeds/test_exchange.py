"""ExchangeFeed against the real ccxt binance client and a local fake Binance."""

from __future__ import annotations

import asyncio

import pandas as pd
import pytest

from core.config import ExchangeConfig
from core.errors import BadSymbolError, ConfigError, DataSourceError
from feeds.exchange import ExchangeFeed
from feeds.retry import RetryPolicy
from tests.fakes.binance import FakeBinance, make_candles

FAST = RetryPolicy(max_retries=3, base_delay=0.001, max_delay=0.01)
H = 3_600_000
T0 = int(pd.Timestamp("2024-01-01", tz="UTC").value // 1_000_000)


def _feed(fake: FakeBinance, **cfg: object) -> ExchangeFeed:
    return ExchangeFeed("binance", ExchangeConfig(ccxt_config=fake.ccxt_config(), **cfg), retry=FAST)


async def test_fetch_closed_candles_paginates_thousands_of_bars() -> None:
    candles = make_candles(periods=3500)
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake, candles_per_request=1000) as feed:
        got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 4000 * H)
    assert len(got) == 3500
    # 1000+1000+1000+500, then one empty page: a short page is not taken as the end because
    # some exchanges cap `limit` below what was asked.
    assert fake.requests["/api/v3/klines"] == 5
    pd.testing.assert_frame_equal(got, candles.set_axis(got.index), check_freq=False, check_names=False)


async def test_fetch_closed_candles_pages_beyond_ccxt_ten_call_limit() -> None:
    candles = make_candles(periods=1200)
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake, candles_per_request=100) as feed:
        got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 1200 * H)
    assert len(got) == 1200
    assert fake.requests["/api/v3/klines"] == 12  # the cursor reaches `now`: no extra call


async def test_fetch_asks_for_no_more_bars_than_can_have_closed() -> None:
    """A cycle's one new bar is a 1-bar request: exchanges weigh (and ccxt paces) requests by their limit."""
    candles = make_candles(periods=50)
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0 + 47 * H, now_ms=T0 + 49 * H)
    assert len(got) == 2 and [r["limit"] for r in fake.kline_requests] == ["2"]


async def test_fetch_closed_candles_drops_the_still_open_bar() -> None:
    candles = make_candles(periods=50)
    now = T0 + 49 * H + 20 * 60_000  # 20 minutes into bar 49
    async with FakeBinance({"BTC/USDT": candles}) as fake, _feed(fake) as feed:
        got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=now)
    assert len(got) == 49
    assert got.index[-1] == candles.index[48]


async def test_fetch_closed_candles_respects_until_and_skips_exchange_holes() -> None:
    candles = make_candles(periods=300)
    holed = candles.drop(candles.index[100:250])  # a 150-bar outage, longer than a page
    async with FakeBinance({"BTC/USDT": holed}) as fake, _feed(fake, candles_per_request=50) as feed:
        got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0, until_ms=T0 + 280 * H, now_ms=T0 + 400 * H)
    assert len(got) == 100 + 30
    assert got.index[-1] == candles.index[279]


@pytest.mark.parametrize(
    ("inject", "name"),
    [
        (lambda f: f.fail_next(429, {"code": -1003, "msg": "Too many requests"}, count=2), "429"),
        (lambda f: f.fail_next(503, "Service Unavailable", count=2), "503"),
        (lambda f: f.fail_next(500, "<html>oops</html>", count=1), "500"),
        (lambda f: f.delay_next(1.0, count=1, path="/api/v3/klines"), "timeout"),
        (lambda f: f.malformed_next(count=2), "malformed"),
    ],
)
async def test_fetch_closed_candles_retries_transient_errors(inject: object, name: str) -> None:
    candles = make_candles(periods=20)
    async with FakeBinance({"BTC/USDT": candles}) as fake:
        cfg = fake.ccxt_config(timeout=300)
        async with ExchangeFeed("binance", ExchangeConfig(ccxt_config=cfg), retry=FAST) as feed:
            inject(fake)  # type: ignore[operator]
            got = await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 20 * H)
    assert len(got) == 20, name
    assert fake.requests["/api/v3/klines"] >= 2


async def test_fetch_closed_candles_gives_up_after_max_retries_with_clear_error() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=5)}) as fake, _feed(fake) as feed:
        fake.fail_next(502, "Bad Gateway", count=100)
        with pytest.raises(DataSourceError, match=r"binance fetch_ohlcv BTC/USDT: ExchangeNotAvailable after 3"):
            await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 5 * H)
    assert fake.requests["/api/v3/klines"] == 4  # first try + 3 retries


async def test_fetch_closed_candles_malformed_json_is_not_taken_as_end_of_data() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=5)}) as fake, _feed(fake) as feed:
        fake.malformed_next(count=100)
        with pytest.raises(DataSourceError, match="malformed JSON"):
            await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 5 * H)


async def test_fetch_closed_candles_unknown_symbol_is_bad_symbol_without_retry() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=5)}) as fake, _feed(fake) as feed:
        with pytest.raises(BadSymbolError, match="'DOGE/USDT' is not listed"):
            await feed.fetch_closed_candles("DOGE/USDT", "1h", T0, now_ms=T0 + 5 * H)
        # delisted between load_markets and the request: the exchange's -1121 answer
        fake.fail_next(400, {"code": -1121, "msg": "Invalid symbol."}, count=1)
        with pytest.raises(BadSymbolError, match="BTC/USDT"):
            await feed.fetch_closed_candles("BTC/USDT", "1h", T0, now_ms=T0 + 5 * H)
    assert fake.requests["/api/v3/klines"] == 1


async def test_validate_symbol_normalizes_and_suggests_near_misses() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}, extra_symbols=["ETH/USDT", "ETH/BTC"]) as fake:
        async with _feed(fake) as feed:
            assert await feed.validate_symbol("btc/usdt") == "BTC/USDT"
            assert await feed.validate_symbol("ETHBTC") == "ETH/BTC"
            with pytest.raises(BadSymbolError) as info:
                await feed.validate_symbol("ETH/USTD")
    assert "ETH/USDT" in info.value.suggestions  # type: ignore[attr-defined]
    assert "binance" in str(info.value) and "ETH/USTD" in str(info.value)
    assert fake.requests["/api/v3/exchangeInfo"] == 1  # markets loaded once


async def test_open_loads_only_spot_markets_and_no_signed_endpoints() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}) as fake, _feed(fake):
        pass
    assert set(fake.requests) == {"/api/v3/exchangeInfo"}


async def test_open_unknown_exchange_is_config_error_with_suggestion() -> None:
    with pytest.raises(ConfigError, match="'binanse'.*binance"):
        await ExchangeFeed("binanse").open()


async def test_fetch_trades_normalizes_aggtrades() -> None:
    trades = pd.DataFrame(
        {
            "timestamp": [T0 + 2000, T0, T0 + 1000],
            "price": [101.0, 100.0, 100.5],
            "amount": [0.5, 1.0, 2.0],
            "side": ["sell", "buy", "buy"],
        }
    )
    async with FakeBinance(trades={"BTC/USDT": trades}) as fake, _feed(fake) as feed:
        got = await feed.fetch_trades("BTC/USDT", since_ms=T0)
    assert list(got.columns) == ["timestamp", "price", "amount", "side"]
    assert got["timestamp"].tolist() == [T0, T0 + 1000, T0 + 2000]
    assert got["side"].tolist() == ["buy", "buy", "sell"]
    assert got["price"].tolist() == [100.0, 100.5, 101.0]
    assert str(got["timestamp"].dtype) == "int64"
    assert fake.requests["/api/v3/aggTrades"] == 1


async def test_feed_pool_opens_each_exchange_once_and_closes_it() -> None:
    from feeds.pool import FeedPool

    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}) as fake:
        async with FeedPool({"binance": ExchangeConfig(ccxt_config=fake.ccxt_config())}, retry=FAST) as pool:
            a, b = await asyncio.gather(pool.get("binance"), pool.get("binance"))
            assert a is b and pool.open_exchanges == ["binance"]
        assert fake.requests["/api/v3/exchangeInfo"] == 1
        with pytest.raises(RuntimeError, match="not open"):
            a.client  # noqa: B018


def test_retry_policy_delay_grows_with_jitter_and_cap() -> None:
    import random

    policy = RetryPolicy(max_retries=10, base_delay=1.0, max_delay=8.0, jitter=0.5)
    rng = random.Random(0)
    for attempt, raw in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 8.0), (6, 8.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(50)]
        assert all(0.5 * raw <= d <= 1.5 * raw for d in delays)
        assert len(set(delays)) > 1  # jittered, not constant


async def test_fetch_closed_candles_rejects_a_timeframe_the_exchange_lacks() -> None:
    from core.errors import InputError

    async with FakeBinance({"BTC/USDT": make_candles(periods=5)}) as fake, _feed(fake) as feed:
        with pytest.raises(InputError, match="binance does not offer 7m candles"):
            await feed.fetch_closed_candles("BTC/USDT", "7m", T0, now_ms=T0 + 5 * H)
    assert fake.requests["/api/v3/klines"] == 0


async def test_open_retries_a_failing_market_load() -> None:
    async with FakeBinance({"BTC/USDT": make_candles(periods=2)}) as fake:
        fake.fail_next(503, "Service Unavailable", count=2, path="/api/v3/exchangeInfo")
        async with _feed(fake) as feed:
            assert feed.symbols == ["BTC/USDT"]
    assert fake.requests["/api/v3/exchangeInfo"] == 3


async def test_fetch_trades_through_the_recent_trades_endpoint() -> None:
    trades = pd.DataFrame(
        {"timestamp": [T0, T0 + 5], "price": [1.5, 1.25], "amount": [2.0, 3.0], "side": ["sell", "buy"]}
    )
    async with FakeBinance(trades={"ETH/BTC": trades}) as fake:
        config = fake.ccxt_config()
        config["options"]["fetchTradesMethod"] = "publicGetTrades"
        async with ExchangeFeed("binance", ExchangeConfig(ccxt_config=config), retry=FAST) as feed:
            got = await feed.fetch_trades("ETH/BTC", limit=10)
            with pytest.raises(BadSymbolError):
                await feed.fetch_trades("ETH/BTX")
    assert fake.requests["/api/v3/trades"] == 1 and fake.requests["/api/v3/aggTrades"] == 0
    assert got["side"].tolist() == ["sell", "buy"] and got["amount"].tolist() == [2.0, 3.0]
