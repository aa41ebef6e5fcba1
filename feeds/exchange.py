"""One ccxt exchange client: closed candles, public trades, symbol validation.

Why a wrapper at all: ccxt gives raw calls, and each caller would otherwise
re-learn the same lessons. Here they are learnt once:

* ccxt's own ``paginate`` stops after ``paginationCalls`` (10) pages without a
  word, so long ranges are paged explicitly, cursor by cursor.
* The newest bar an exchange returns is usually still open; storing it would
  freeze a half-built bar. Only bars whose close time is ``<= now`` leave
  this module.
* Transient failures (``NetworkError``, ``DDoSProtection``,
  ``ExchangeNotAvailable``, ``RequestTimeout``) are retried with exponential
  backoff and jitter; ``BadSymbol`` is permanent and becomes
  :class:`~core.errors.BadSymbolError`; anything else becomes
  :class:`~core.errors.DataSourceError` naming exchange and symbol.
* ccxt answers a body that is not JSON with an empty list; an empty page
  whose raw body does not parse is therefore treated as a transient error
  rather than as "no more data".

One client per exchange, opened once (markets loaded once) and closed on
shutdown; requests share ccxt's rate limiter and a semaphore capping the
number in flight (``ExchangeConfig.max_concurrency``).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pandas as pd

from core.config import ExchangeConfig
from core.errors import BadSymbolError, ConfigError, DataSourceError, InputError
from core.timeframes import timeframe_to_ms
from feeds.retry import RetryPolicy
from storage.candles import CANDLE_COLUMNS

__all__ = ["ExchangeFeed", "empty_candles", "normalize_trades"]

log = logging.getLogger(__name__)

TRADE_COLUMNS = ("timestamp", "price", "amount", "side")


class _MalformedResponse(Exception):
    """The exchange answered with a body that is not JSON."""


def empty_candles() -> pd.DataFrame:
    index = pd.DatetimeIndex([], tz="UTC", name="time").as_unit("ms")
    return pd.DataFrame({c: pd.Series([], dtype="float64") for c in CANDLE_COLUMNS}, index=index)


def _rows_to_frame(rows: list[list[Any]]) -> pd.DataFrame:
    if not rows:
        return empty_candles()
    # One float64 array, not DataFrame.astype: a per-column astype costs ms per page, and a cycle
    # fetches one small page per symbol. Epoch ms are exact in float64 (< 2**53); None -> NaN.
    # The index straight from datetime64[ms] (pd.to_datetime parses and checks, ~1.5 ms a call); the
    # dedup and sort only when the exchange sent rows out of order or twice (one new bar per cycle never is).
    values = np.array([r[:6] for r in rows], dtype="float64")
    ts = values[:, 0].astype("int64")
    index = pd.DatetimeIndex(ts.astype("datetime64[ms]"), name="time").tz_localize("UTC")
    frame = pd.DataFrame(values[:, 1:], index=index, columns=list(CANDLE_COLUMNS))
    if len(ts) > 1 and not (np.diff(ts) > 0).all():
        frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    return frame


def normalize_trades(trades: list[dict[str, Any]]) -> pd.DataFrame:
    """ccxt unified trades -> frame ``timestamp`` (int ms), ``price``, ``amount``, ``side``, sorted by time."""
    frame = pd.DataFrame(
        {
            "timestamp": [t.get("timestamp") for t in trades],
            "price": [t.get("price") for t in trades],
            "amount": [t.get("amount") for t in trades],
            "side": [t.get("side") for t in trades],
        }
    )
    frame = frame.dropna(subset=["timestamp", "price", "amount"])
    frame = frame.astype({"timestamp": "int64", "price": "float64", "amount": "float64"})
    frame["side"] = frame["side"].fillna("unknown").astype(str)
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


class ExchangeFeed:
    """Async market data from one ccxt exchange.

    Parameters
    ----------
    name
        A ccxt exchange id (``ccxt.exchanges``), e.g. ``"binance"``.
    cfg
        ``[exchanges.<name>]`` from the config; ``ccxt_config`` goes to the
        ccxt constructor unchanged. Defaults when the exchange is not configured.
    retry
        Backoff policy; defaults to ``cfg.max_retries`` retries starting at
        ``cfg.retry_base_delay`` seconds, capped at ``cfg.retry_max_delay``.
    """

    def __init__(self, name: str, cfg: ExchangeConfig | None = None, *, retry: RetryPolicy | None = None) -> None:
        self.name = name
        self.cfg = cfg or ExchangeConfig()
        self.retry = retry or RetryPolicy(
            max_retries=self.cfg.max_retries,
            base_delay=self.cfg.retry_base_delay,
            max_delay=self.cfg.retry_max_delay,
        )
        self._client: Any = None
        self._semaphore = asyncio.Semaphore(self.cfg.max_concurrency)

    # ------------------------------------------------------------ lifecycle
    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError(f"ExchangeFeed({self.name!r}) is not open: use 'async with' or await open()")
        return self._client

    async def open(self) -> ExchangeFeed:
        """Create the ccxt client and load its markets (once)."""
        if self._client is not None:
            return self
        import ccxt.async_support as ccxt

        ccxt_id = self.cfg.ccxt_id or self.name
        if ccxt_id not in ccxt.exchanges:
            near = difflib.get_close_matches(ccxt_id, ccxt.exchanges, n=3)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            key = f"exchanges.{self.name}.ccxt_id" if self.cfg.ccxt_id else f"exchange {self.name!r}"
            raise ConfigError(f"{key}: {ccxt_id!r} is not a ccxt exchange id{hint}")
        config = {"enableRateLimit": True, **self.cfg.client_config()}
        self._client = getattr(ccxt, ccxt_id)(config)
        try:
            await self._call(self._client.load_markets, what="load_markets")
        except BaseException:
            await self.close()
            raise
        log.info("%s: %d markets loaded", self.name, len(self._client.markets or {}))
        return self

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def __aenter__(self) -> ExchangeFeed:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -------------------------------------------------------------- symbols
    @property
    def symbols(self) -> list[str]:
        return sorted(self.client.markets or {})

    async def validate_symbol(self, symbol: str) -> str:
        """The exchange's spelling of ``symbol``; ``BadSymbolError`` with suggestions if unlisted.

        Accepts ``btc/usdt`` and the exchange's market id (``BTCUSDT``).
        """
        client = self.client
        markets = client.markets or {}
        wanted = symbol.strip().upper()
        if wanted in markets:
            return wanted
        by_id = client.markets_by_id or {}
        for key in (symbol.strip(), wanted):
            if key in by_id:
                found = by_id[key]
                found = found[0] if isinstance(found, list) else found
                return str(found["symbol"])
        suggestions = [s for s in difflib.get_close_matches(wanted, list(markets), n=6, cutoff=0.6) if s != wanted][:5]
        if not suggestions and "/" in wanted:  # same base on another quote: BTC/USDX -> BTC/USDT
            base = wanted.split("/")[0]
            suggestions = [s for s in markets if s.split("/")[0] == base][:5]
        err = BadSymbolError(
            f"{self.name}: symbol {symbol!r} is not listed"
            + (f"; did you mean {', '.join(suggestions)}?" if suggestions else "")
        )
        err.suggestions = suggestions  # type: ignore[attr-defined]
        raise err

    def validate_timeframe(self, timeframe: str) -> str:
        """``timeframe`` if the exchange serves candles at it; ``InputError`` listing those it serves otherwise."""
        supported = getattr(self.client, "timeframes", None) or {}
        if supported and timeframe not in supported:
            raise InputError(f"{self.name} does not offer {timeframe} candles (it offers {', '.join(supported)})")
        return timeframe

    # --------------------------------------------------------------- calls
    def _retryable(self) -> tuple[type[BaseException], ...]:
        import ccxt

        return (
            ccxt.NetworkError,
            ccxt.DDoSProtection,
            ccxt.ExchangeNotAvailable,
            ccxt.RequestTimeout,
            _MalformedResponse,
        )

    async def _call(self, fn: Any, *args: Any, what: str, symbol: str | None = None, **kwargs: Any) -> Any:
        """One request under the semaphore, with retries, ccxt errors mapped to ours."""
        import ccxt

        label = f"{self.name} {what}" + (f" {symbol}" if symbol else "")

        async def attempt() -> Any:
            async with self._semaphore:
                result = await fn(*args, **kwargs)
                if isinstance(result, list) and not result:
                    self._check_body(label)
                return result

        try:
            return await self.retry.run(attempt, self._retryable(), what=label)
        except ccxt.BadSymbol as err:
            raise self._bad_symbol(symbol or "?", refused=f"{label}: {type(err).__name__}: {str(err)[:200]}") from None
        except _MalformedResponse as err:
            raise DataSourceError(f"{label}: {err} (after {self.retry.max_retries} retries)") from None
        except ccxt.NetworkError as err:
            raise DataSourceError(
                f"{label}: {type(err).__name__} after {self.retry.max_retries} retries: {str(err)[:300]}"
            ) from None
        except ccxt.BaseError as err:
            raise DataSourceError(f"{label}: {type(err).__name__}: {str(err)[:300]}") from None

    def _check_body(self, label: str) -> None:
        body = getattr(self._client, "last_http_response", None)
        if isinstance(body, str) and body.strip():
            try:
                json.loads(body)
            except ValueError:
                raise _MalformedResponse(f"malformed JSON in response: {body[:80]!r}") from None

    def _bad_symbol(self, symbol: str, *, refused: str | None = None) -> BadSymbolError:
        """The error for a symbol the exchange would not serve; never suggests the symbol itself.

        ``refused``: the exchange's own answer, when it turned down a request for a symbol it lists
        (a halted market, or a timeframe not served for it): then the symbol is not the problem.
        """
        try:
            symbols = self.symbols
        except RuntimeError:
            symbols = []
        if refused is not None and symbol.upper() in symbols:
            listed = BadSymbolError(
                f"{self.name} refused {symbol}, which it lists (delisted or halted since the markets were loaded, "
                f"or the timeframe is not served for it): {refused}"
            )
            listed.suggestions = []  # type: ignore[attr-defined]
            return listed
        near = [s for s in difflib.get_close_matches(symbol.upper(), symbols, n=6, cutoff=0.6) if s != symbol.upper()]
        near = near[:5]
        err = BadSymbolError(
            f"{self.name}: symbol {symbol!r} is not listed" + (f"; did you mean {', '.join(near)}?" if near else "")
        )
        err.suggestions = near  # type: ignore[attr-defined]
        return err

    # -------------------------------------------------------------- candles
    async def iter_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> AsyncIterator[pd.DataFrame]:
        """Pages of closed candles with open time in ``[since_ms, until_ms)``, oldest first.

        Pages are yielded as they arrive so a caller can store each one and
        an interrupted backfill keeps what it had.
        """
        step = timeframe_to_ms(timeframe)
        now = int(time.time() * 1000) if now_ms is None else now_ms
        # A bar is closed when open + step <= now. Comparing opens with ``now - step`` rather than
        # aligning ``now`` to the epoch grid also holds for bars not on that grid (weeks open on Monday).
        end = now - step + 1
        if until_ms is not None:
            end = min(end, until_ms)
        cursor = since_ms
        per_request = self.cfg.candles_per_request
        if symbol not in (self.client.markets or {}):
            raise self._bad_symbol(symbol)
        self.validate_timeframe(timeframe)
        while cursor < end:
            # Ask for no more bars than can exist: exchanges charge a request by its limit (Binance's
            # klines weigh 1 up to 99 bars, 5 for 1,000, and ccxt's limiter paces by that weight),
            # so a cycle's one new bar must not be requested as a 1,000-bar page.
            limit = max(1, min(per_request, -(-(end - cursor) // step)))
            rows = await self._call(
                self.client.fetch_ohlcv,
                symbol,
                timeframe,
                since=cursor,
                limit=limit,
                params={"until": end - 1},
                what="fetch_ohlcv",
                symbol=symbol,
            )
            if not isinstance(rows, list) or any(not isinstance(r, list) or len(r) < 6 for r in rows):
                raise DataSourceError(f"{self.name} fetch_ohlcv {symbol}: unexpected response shape")
            frame = _rows_to_frame(rows)
            frame = frame[(frame.index.asi8 >= cursor) & (frame.index.asi8 < end)]
            if frame.empty:
                return
            yield frame
            cursor = int(frame.index.asi8[-1]) + step

    async def fetch_closed_candles(
        self,
        symbol: str,
        timeframe: str,
        since_ms: int,
        *,
        until_ms: int | None = None,
        now_ms: int | None = None,
    ) -> pd.DataFrame:
        """All closed candles with open time in ``[since_ms, until_ms)`` (explicitly paginated)."""
        pages = [
            page
            async for page in self.iter_closed_candles(symbol, timeframe, since_ms, until_ms=until_ms, now_ms=now_ms)
        ]
        if not pages:
            return empty_candles()
        frame = pd.concat(pages)
        return frame[~frame.index.duplicated(keep="last")].sort_index()

    # ----------------------------------------------------------- order book
    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        """ccxt's unified order book (``bids``/``asks`` as ``[price, amount]``), at most ``limit`` levels a side."""
        if symbol not in (self.client.markets or {}):
            raise self._bad_symbol(symbol)
        book = await self._call(
            self.client.fetch_order_book, symbol, limit=limit, what="fetch_order_book", symbol=symbol
        )
        return dict(book)

    # --------------------------------------------------------------- trades
    async def fetch_trades(self, symbol: str, since_ms: int | None = None, limit: int | None = None) -> pd.DataFrame:
        """Public trades normalized to ``timestamp`` (ms), ``price``, ``amount``, ``side``."""
        if symbol not in (self.client.markets or {}):
            raise self._bad_symbol(symbol)
        trades = await self._call(
            self.client.fetch_trades, symbol, since=since_ms, limit=limit, what="fetch_trades", symbol=symbol
        )
        return normalize_trades(trades)
