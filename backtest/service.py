"""The backtest service the CLI and the Telegram bot share.

``backtest_symbol`` reads candles and events from the database (or regenerates
events walk-forward) and runs a strategy; ``summarize`` and ``equity_png``
turn the result into a chat message and a chart. Nothing here prints or
knows about Telegram.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from backtest.engine import BacktestResult, run_backtest
from backtest.events import normalize_events
from backtest.report import equity_png, summarize
from backtest.strategy import make_strategy
from core.errors import BacktestError, InputError

__all__ = ["backtest_symbol", "equity_png", "parse_period", "summarize"]

log = logging.getLogger(__name__)

_PERIOD = re.compile(r"^(\d{1,7})([mhdw])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def parse_period(
    period: str | tuple[int | None, int | None] | None, now_ms: int | None = None
) -> tuple[int | None, int | None]:
    """``"30d"`` (the last 30 days; units m, h, d, w as in chat), ``(start_ms, end_ms)`` or None -> (start_ms, end_ms).

    The end is exclusive. The units are the chat's (``bot.inputs.parse_duration``), so a period the
    chat accepts is never refused here.
    """
    if period is None:
        return None, None
    if isinstance(period, tuple):
        return period
    match = _PERIOD.match(period.strip().lower())
    if not match:
        raise InputError(f"period {period!r}: expected a number and m, h, d or w (e.g. '30d')")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return now - int(match.group(1)) * _UNIT_MS[match.group(2)], None


def backtest_symbol(
    session_factory: Any,
    *,
    exchange: str,
    symbol: str,
    timeframe: str,
    detector: str | None = None,
    strategy: str = "fixed_hold",
    params: Mapping[str, Any] | None = None,
    period: str | tuple[int | None, int | None] | None = None,
    walk_forward: Mapping[str, Any] | None = None,
    random_draws: int = 100,
    progress: Callable[[int, int], None] | None = None,
    max_bars: int | None = None,
) -> BacktestResult:
    """Backtest one stored symbol on its stored events (or walk-forward events).

    ``params`` override the strategy's fields (strings are parsed, so chat and
    CLI arguments can be passed as they are). ``walk_forward`` (keys
    ``train_bars``, ``retrain_every``, ``detector_params``) regenerates events
    with ``detector`` retrained on rolling past windows instead of reading
    stored ones. ``max_bars`` keeps only the newest bars of the period (and the events on them):
    the chat's bound on memory and time. Raises ``InputError``/``BacktestError`` with a one-line reason.
    """
    from storage.candles import load_candles
    from storage.events import events_frame, list_events

    symbol = symbol.upper()
    strat = make_strategy(strategy, {**({"detector": detector} if detector else {}), **dict(params or {})})
    start_ms, end_ms = parse_period(period)
    with session_factory() as session:
        candles = load_candles(session, exchange, symbol, timeframe, start_ms=start_ms, end_ms=end_ms, limit=max_bars)
        if max_bars is not None and len(candles) == max_bars:  # cut: events before the first bar have no prices
            start_ms = int(candles.index[0].value // 1_000_000)
        stored = (
            []
            if walk_forward
            else list_events(
                session,
                exchange=exchange,
                symbol=symbol,
                timeframe=timeframe,
                detector=detector,
                since_ms=start_ms,
                until_ms=end_ms,
                newest_first=False,
            )
        )
    if len(candles) < 2:
        raise BacktestError(
            f"{exchange}:{symbol}:{timeframe}: {len(candles)} stored candles; import or sync some first"
        )
    if walk_forward:
        if not detector:
            raise InputError("walk-forward needs a detector name")
        from backtest.walkforward import detector_factory, walk_forward_events

        events = normalize_events(
            walk_forward_events(
                candles,
                detector_factory(detector, walk_forward.get("detector_params")),
                train_bars=int(walk_forward.get("train_bars", 24 * 30)),
                retrain_every=int(walk_forward.get("retrain_every", 24 * 7)),
                symbol=symbol,
                progress=progress,
            ),
            default_symbol=symbol,
        )
    else:
        events = normalize_events(events_frame(stored), default_symbol=symbol)
    log.info("backtest %s:%s:%s %s on %d events", exchange, symbol, timeframe, strat.name, len(events))
    result = run_backtest({symbol: candles}, events, strat, random_draws=random_draws)
    result.extra["events_source"] = (
        {"walk_forward": {k: v for k, v in walk_forward.items() if k != "detector_params"}, "detector": detector}
        if walk_forward
        else {"database": {"exchange": exchange, "timeframe": timeframe, "detector": detector}}
    )
    return result
