"""On-chain metrics: a metric source kind next to the social ones.

Same protocol as social sources (``name``, ``metric``, ``async fetch(symbol, start_ms,
end_ms) -> Series``), same storage (``social_points``: source, symbol, metric, time,
value; here the symbol is the chain asset, ``BTC``, shared by every market of that
base), same rule: a failing source is logged and skipped and detection goes on.

``build_onchain_sources`` turns the config's ``[[onchain]]`` tables into sources (Coin
Metrics Community, Blockchair, Glassnode, or the generic ``http_json``/``csv`` sources
of :mod:`feeds.social`); ``sync_onchain`` fetches and stores a window for many assets;
:func:`feeds.onchain.align.metric_per_bar` puts stored values on bars without look-ahead.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from core.config import OnchainSourceConfig
from core.errors import BotError, ConfigError
from core.timeframes import timeframe_to_ms
from feeds.onchain.align import metric_per_bar, onchain_column
from feeds.onchain.providers import BlockchairSource, CoinMetricsSource, GlassnodeSource

__all__ = [
    "BlockchairSource",
    "CoinMetricsSource",
    "GlassnodeSource",
    "asset_of",
    "build_onchain_source",
    "build_onchain_sources",
    "metric_per_bar",
    "onchain_column",
    "sync_onchain",
]

_PROVIDERS = {"coinmetrics": CoinMetricsSource, "blockchair": BlockchairSource, "glassnode": GlassnodeSource}


def asset_of(symbol: str) -> str:
    """The chain asset of a market: ``BTC/USDT`` -> ``BTC`` (on-chain values are stored per asset)."""
    return symbol.upper().partition("/")[0]


def build_onchain_source(cfg: OnchainSourceConfig) -> Any:
    """One source; it carries ``period_ms`` and ``delay_ms`` for the alignment to bars."""
    options = dict(cfg.options)
    source: Any
    if cfg.kind in _PROVIDERS:
        source = _PROVIDERS[cfg.kind](cfg.name, cfg.metric, options, period=cfg.period)
    elif cfg.kind == "http_json":
        from feeds.social.http import HttpJsonSource

        source = HttpJsonSource(cfg.name, cfg.metric, options)
    elif cfg.kind == "csv":
        from feeds.social.files import FileSocialSource

        source = FileSocialSource(cfg.name, "csv", cfg.metric, options)
    else:  # pragma: no cover - the config model validates kinds
        raise ConfigError(f"on-chain source {cfg.name!r}: unknown kind {cfg.kind!r}")
    source.period_ms = timeframe_to_ms(cfg.period)
    source.delay_ms = int(cfg.delay_minutes) * 60_000
    return source


def build_onchain_sources(cfgs: Sequence[OnchainSourceConfig]) -> list[Any]:
    """The enabled sources in config order; bad options raise ConfigError naming the source."""
    return [build_onchain_source(c) for c in cfgs if c.enabled]


async def sync_onchain(
    sources: Sequence[Any],
    session_factory: sessionmaker[Session],
    symbols: Iterable[str],
    start_ms: int,
    end_ms: int,
) -> dict[tuple[str, str], int | BotError]:
    """Fetch ``[start_ms, end_ms)`` for every (source, asset of ``symbols``) and store it.

    Never raises for a failing source: its entries hold the error (already logged).
    """
    from feeds.social import sync_social

    assets = sorted({asset_of(s) for s in symbols})
    return await sync_social(sources, session_factory, assets, start_ms, end_ms)
