"""The config's watchlist seeds the database; after that the database rules.

Kept apart from ``bot.runtime.compose`` (which pulls in Telegram, charts and the
detectors) so ``vigil db upgrade`` and the watchlist commands stay light.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session, sessionmaker

from core.config import Config

__all__ = ["seed_watchlist_from_config"]

log = logging.getLogger(__name__)


def seed_watchlist_from_config(cfg: Config, factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    """Insert the config's watchlist markets the database has never had; returns those inserted.

    After the first start the database rules (chat and CLI changes), so a
    config market that was removed stays removed; that is logged, with how to
    bring it back, because the config file still lists it.
    """
    from storage.watchlist import enabled_markets, seed_watchlist

    markets = [(e.exchange, e.symbol, e.timeframe) for e in cfg.watchlist]
    settings = {(e.exchange, e.symbol, e.timeframe): (e.group, e.book_depth) for e in cfg.watchlist}
    with factory.begin() as session:
        added = seed_watchlist(session, markets, settings)
        watched = set(enabled_markets(session))
    removed = [m for m in markets if m not in watched]
    if added:
        log.info("watchlist: seeded %d market(s) from the config", len(added))
    for exchange, symbol, timeframe in removed:
        log.info(
            "watchlist: %s %s on %s is in the config but was removed (chat or CLI); /watch or vigil watch adds it",
            symbol,
            timeframe,
            exchange,
        )
    return added
