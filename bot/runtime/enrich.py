"""What a cycle adds to the candle frames besides social volume: on-chain metrics, order books, peers.

Three optional inputs, each with the social sources' rule that a failing source is
recorded and skipped, never a reason to stop detection:

* **on-chain metrics** (``[[onchain]]``): fetched per chain asset when a new value can be
  due (after each period closes, hourly while the provider is late; the whole history
  window on a process's first cycle), stored in
  ``social_points``, and put on the bars by ``feeds.onchain.metric_per_bar`` (a daily value
  reaches the bars only after its day closed) as ``onchain_<metric>`` columns;
* **order-book features** (``book_depth`` on a watchlist entry): one snapshot per market at
  every bar close, reduced and stored for the bar that just closed
  (``feeds.orderbook``), pruned after ``scheduler.book_retention_days``, attached as
  ``book_*`` columns;
* **asset groups**: every member of a group gets its peers' closes and volumes as
  ``close@<peer>``/``volume@<peer>`` columns (``detectors.groups``), aligned on its own
  bars, which is what the ``divergence`` detector reads.

Detectors that were not asked to read a column ignore it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from core.config import Config
from core.timeframes import timeframe_to_ms

__all__ = ["Enricher"]

log = logging.getLogger(__name__)
_ONCHAIN_REFRESH_MS = 3_600_000  # a late on-chain value is asked for again an hour later
_MAX_AGE_PERIODS = 3.0


class Enricher:
    """The cycle's extra inputs (see the module docstring); one per runtime."""

    def __init__(self, cfg: Config, factory: sessionmaker[Session], feeds: Any, onchain: Sequence[Any] = ()) -> None:
        self.cfg = cfg
        self.factory = factory
        self.feeds = feeds
        self.onchain = list(onchain)
        self._onchain_next: dict[tuple[str, str], int] = {}  # (source, asset) -> earliest next fetch

    # ------------------------------------------------------------------ fetch
    async def sync(self, entries: Sequence[Any], timeframe: str, now_ms: int, errors: dict[str, str]) -> None:
        """Fetch and store on-chain values and order-book snapshots; failures land in ``errors``."""
        await asyncio.gather(
            self._sync_onchain(entries, timeframe, now_ms, errors), self._sync_books(entries, timeframe, now_ms, errors)
        )

    async def _sync_onchain(self, entries: Sequence[Any], timeframe: str, now_ms: int, errors: dict[str, str]) -> None:
        if not self.onchain or not entries:
            return
        from feeds.onchain import asset_of
        from feeds.social import sync_social

        history = self.cfg.scheduler.history_bars * timeframe_to_ms(timeframe)
        assets = sorted({asset_of(e.symbol) for e in entries})
        for source in self.onchain:
            due = [a for a in assets if self._onchain_next.get((source.name, a), 0) <= now_ms]
            if not due:
                continue
            first = min(self._onchain_next.get((source.name, a), 0) for a in due) == 0
            span = history + int(_MAX_AGE_PERIODS * source.period_ms) if first else 3 * source.period_ms
            try:
                results = await sync_social([source], self.factory, due, now_ms - span, now_ms)
            except Exception as err:  # a plug-in's bug is still only a missing input
                errors[f"onchain:{source.name}"] = f"{type(err).__name__}: {err}"
                log.warning("on-chain source %s failed: %s", source.name, err)
                continue
            fetched = []
            for (_, asset), outcome in results.items():
                if isinstance(outcome, Exception):
                    errors[f"onchain:{source.name}:{asset}"] = str(outcome)
                else:
                    fetched.append(asset)
            self._schedule_next(source, fetched, now_ms)

    def _schedule_next(self, source: Any, assets: list[str], now_ms: int) -> None:
        """When to ask again: once the next period has closed (and its delay passed) if the last
        closed period's value is stored; otherwise in an hour (the provider is late)."""
        from storage.metrics import latest_points

        period = int(source.period_ms)
        last_closed = (now_ms // period - 1) * period  # stamp of the newest period that has closed
        next_close = (now_ms // period + 1) * period + int(source.delay_ms)
        with self.factory() as session:
            newest = latest_points(session, [source.name], assets)
        for asset in assets:
            have = newest.get((source.name, asset), -1)
            up_to_date = have >= last_closed and now_ms >= last_closed + period + int(source.delay_ms)
            self._onchain_next[(source.name, asset)] = (
                next_close if up_to_date else now_ms + min(_ONCHAIN_REFRESH_MS, period)
            )

    async def _sync_books(self, entries: Sequence[Any], timeframe: str, now_ms: int, errors: dict[str, str]) -> None:
        wanted = [e for e in entries if getattr(e, "book_depth", None)]
        if not wanted:
            return
        from feeds.orderbook import fetch_book_features
        from storage.book import prune_book, upsert_book

        bar_ts = now_ms - timeframe_to_ms(timeframe)  # the snapshot belongs to the bar that just closed

        async def one(entry: Any) -> tuple[Any, dict[str, float] | None]:
            try:
                feed = await self.feeds.get(entry.exchange)
                return entry, await fetch_book_features(feed, entry.symbol, int(entry.book_depth))
            except Exception as err:  # one market's book must not stop the others
                errors[f"book:{entry.exchange}:{entry.symbol}"] = f"{type(err).__name__}: {err}"
                log.warning("order book of %s:%s failed: %s", entry.exchange, entry.symbol, err)
                return entry, None

        got = await asyncio.gather(*(one(e) for e in wanted))
        keep_ms = int(self.cfg.scheduler.book_retention_days * 86_400_000)
        with self.factory.begin() as session:
            for entry, features in got:
                if features is not None:
                    upsert_book(session, entry.exchange, entry.symbol, bar_ts, features)
            prune_book(session, before_ms=now_ms - keep_ms)

    # ----------------------------------------------------------------- attach
    def enrich(
        self, frames: Mapping[str, pd.DataFrame], entries: Sequence[Any], timeframe: str, now_ms: int
    ) -> dict[str, pd.DataFrame]:
        """``frames`` (keyed ``exchange:symbol``) with on-chain, book and peer columns where configured."""
        out = dict(frames)
        if not out:
            return out
        by_key = {f"{e.exchange}:{e.symbol}": e for e in entries}
        with self.factory() as session:
            self._attach_onchain(session, out, now_ms)
            self._attach_books(session, out, by_key, timeframe, now_ms)
        return self._attach_groups(out, by_key)

    def _attach_onchain(self, session: Session, frames: dict[str, pd.DataFrame], now_ms: int) -> None:
        if not self.onchain:
            return
        from feeds.onchain import asset_of, metric_per_bar, onchain_column
        from storage.metrics import load_metric_points

        first = min(int(f.index[0].value // 1_000_000) for f in frames.values() if len(f)) if frames else now_ms
        longest = max(s.period_ms for s in self.onchain)
        assets = sorted({asset_of(k.partition(":")[2]) for k in frames})
        points = load_metric_points(
            session,
            [s.name for s in self.onchain],
            assets,
            start_ms=first - int((_MAX_AGE_PERIODS + 1) * longest),
            end_ms=now_ms,
        )
        for key, frame in list(frames.items()):
            asset = asset_of(key.partition(":")[2])
            columns: dict[str, pd.Series] = {}
            for source in self.onchain:  # config order: the first source with a value for a bar wins
                series = points.get((source.name, asset))
                if series is None:
                    continue
                aligned = metric_per_bar(
                    series,
                    pd.DatetimeIndex(frame.index),
                    period_ms=source.period_ms,
                    delay_ms=source.delay_ms,
                    max_age=_MAX_AGE_PERIODS,
                )
                name = onchain_column(source.metric)
                columns[name] = columns[name].combine_first(aligned) if name in columns else aligned
            if columns:
                frames[key] = frame.assign(**{k: v.to_numpy() for k, v in columns.items()})

    def _attach_books(
        self,
        session: Session,
        frames: dict[str, pd.DataFrame],
        by_key: Mapping[str, Any],
        timeframe: str,
        now_ms: int,
    ) -> None:
        wanted: dict[str, list[str]] = {}
        for key, entry in by_key.items():
            if getattr(entry, "book_depth", None) and key in frames:
                wanted.setdefault(entry.exchange, []).append(entry.symbol)
        if not wanted:
            return
        from storage.book import load_book_many

        start = now_ms - (self.cfg.scheduler.history_bars + 1) * timeframe_to_ms(timeframe)
        for exchange, symbols in wanted.items():
            for symbol, book in load_book_many(session, exchange, symbols, start_ms=start, end_ms=now_ms).items():
                key = f"{exchange}:{symbol}"
                frame = frames[key]
                aligned = book.reindex(pd.DatetimeIndex(frame.index))
                frames[key] = frame.assign(**{c: aligned[c].to_numpy() for c in aligned.columns})

    @staticmethod
    def _attach_groups(frames: dict[str, pd.DataFrame], by_key: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
        from detectors.groups import attach_peers

        groups: dict[str, list[str]] = {}
        for key, entry in by_key.items():
            group = getattr(entry, "group", None)
            if group and key in frames:
                groups.setdefault(group, []).append(key)
        for members in groups.values():
            if len(members) > 1:
                frames.update(attach_peers({k: frames[k] for k in members}))
        return frames
