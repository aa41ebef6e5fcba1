"""Social volume: sources behind one interface, and a sync into storage.

``build_social_sources`` turns the config's ``[[social]]`` tables into
sources; ``sync_social`` fetches a window for many symbols from every source
and upserts what came back. A source that fails is logged and skipped for
that cycle (its entry in the result holds the error): social data is
optional context and must not stop market detection.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core.config import SocialSourceConfig
from core.errors import BotError, ConfigError
from feeds.social.align import attach_social, social_per_bar
from feeds.social.base import SocialSource, empty_series, fetch_or_empty
from feeds.social.files import FileSocialSource
from feeds.social.http import HttpJsonSource, LunarCrushSource, SantimentSource

__all__ = [
    "FileSocialSource",
    "HttpJsonSource",
    "LunarCrushSource",
    "SantimentSource",
    "SocialSource",
    "attach_social",
    "build_social_source",
    "build_social_sources",
    "empty_series",
    "fetch_or_empty",
    "social_per_bar",
    "sync_social",
]

log = logging.getLogger(__name__)


def build_social_source(cfg: SocialSourceConfig) -> SocialSource:
    options = dict(cfg.options)
    if cfg.kind in ("csv", "parquet"):
        return FileSocialSource(cfg.name, cfg.kind, cfg.metric, options)
    if cfg.kind == "http_json":
        return HttpJsonSource(cfg.name, cfg.metric, options)
    if cfg.kind == "santiment":
        return SantimentSource(cfg.name, cfg.metric, options)
    if cfg.kind == "lunarcrush":
        return LunarCrushSource(cfg.name, cfg.metric, options)
    raise ConfigError(f"social source {cfg.name!r}: unknown kind {cfg.kind!r}")  # pragma: no cover - config validates


def build_social_sources(cfgs: Sequence[SocialSourceConfig]) -> list[SocialSource]:
    """The enabled sources, in config order. Bad options raise ConfigError naming the source."""
    return [build_social_source(c) for c in cfgs if c.enabled]


async def sync_social(
    sources: Sequence[SocialSource],
    session_factory: sessionmaker[Session],
    symbols: Iterable[str],
    start_ms: int,
    end_ms: int,
) -> dict[tuple[str, str], int | BotError]:
    """Fetch ``[start_ms, end_ms)`` for every (source, symbol) and store it.

    Returns rows upserted per (source name, symbol), or the error for pairs
    that failed (already logged). Never raises for a failing source.
    """
    from storage.db import session_scope
    from storage.social import upsert_social

    pairs = [(src, sym) for src in sources for sym in dict.fromkeys(symbols)]

    async def one(src: SocialSource, sym: str) -> pd.Series | BotError:
        try:
            return await src.fetch(sym, start_ms, end_ms)
        except BotError as err:
            log.warning("social source %s: %s: %s", src.name, sym, err)
            return err

    fetched = await asyncio.gather(*(one(src, sym) for src, sym in pairs))
    out: dict[tuple[str, str], int | BotError] = {}
    with session_scope(session_factory) as session:
        for (src, sym), got in zip(pairs, fetched, strict=True):
            if isinstance(got, BotError):
                out[(src.name, sym)] = got
                continue
            out[(src.name, sym)] = upsert_social(session, src.name, sym, src.metric, got)
    return out
