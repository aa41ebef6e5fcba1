"""``vigil watch/unwatch/watchlist/events/chart/bot`` and ``vigil alerts flush``.

Thin: parse options through ``bot/inputs.py``, call the same
:class:`~bot.service.BotService` the Telegram handlers use, print. Heavy
imports (ccxt through the exchange validator, python-telegram-bot) happen
inside the commands.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import ConfigOption, DbOption, console, load_cli_config, open_cli_database

__all__ = ["register", "webhook_secret"]

TimeframeOpt = Annotated[str | None, typer.Option("--timeframe", "-t", help="Bar length, e.g. 1h (default: config).")]
ExchangeOpt = Annotated[
    str | None,
    typer.Option(
        "--exchange",
        "-e",
        help="Exchange id (default: first configured), or several comma-separated to watch an asset group.",
    ),
]


def _service(config: Path | None, db: str | None, *, validate: bool = False) -> Any:
    """The service the chat uses too (``bot.runtime.compose.build_service``); symbols checked on the exchange.

    The config's watchlist seeds a database that has never seen it, as ``vigil run`` would.
    """
    from bot.runtime.compose import build_service
    from bot.runtime.seed import seed_watchlist_from_config
    from feeds.pool import FeedPool

    cfg = load_cli_config(config, db)
    factory = open_cli_database(cfg)
    seed_watchlist_from_config(cfg, factory)
    return build_service(cfg, factory, feeds=FeedPool(cfg.exchanges) if validate else None, backtests=False)


async def _closing(service: Any, coro: Any) -> Any:
    """Await ``coro``, then close the exchange clients the symbol check opened."""
    try:
        return await coro
    finally:
        pool = getattr(service.validate_symbol, "__self__", None)
        if pool is not None:
            await pool.close()


def watch(
    symbol: Annotated[str, typer.Argument(help="Market, e.g. BTC/USDT; or the name of a [[groups]] entry.")],
    timeframe: TimeframeOpt = None,
    exchange: ExchangeOpt = None,
    group: Annotated[str | None, typer.Option("--group", "-g", help="Name of the asset group (default: base).")] = None,
    validate: Annotated[bool, typer.Option(help="Check the symbol against the exchange's markets.")] = True,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Add a market to the watchlist (checked against the exchange unless --no-validate).

    ``-e binance,okx,kraken`` watches the asset on each exchange as one asset group (each
    exchange's quote found among USDT, USD, USDC); a name without a slash watches the
    config's ``[[groups]]`` entry of that name.
    """
    from bot.inputs import parse_exchanges, parse_symbol, parse_timeframe
    from core.errors import BadSymbolError

    tf = parse_timeframe(timeframe) if timeframe else None
    if _service(config, db).is_group_name(symbol):
        service = _service(config, db)
        entries = asyncio.run(service.watch_named_group(symbol, source="cli"))
        for entry, created in entries:
            verb = "now watching" if created else "already watching"
            console.print(f"{verb} {entry.exchange}:{entry.symbol}:{entry.timeframe} (group {entry.group_name})")
        return
    sym = parse_symbol(symbol)
    service = _service(config, db, validate=validate)
    if exchange and "," in exchange:
        entries = asyncio.run(
            _closing(service, service.watch_group(sym, parse_exchanges(exchange), tf, group=group, source="cli"))
        )
        for entry, created in entries:
            verb = "now watching" if created else "already watching"
            console.print(f"{verb} {entry.exchange}:{entry.symbol}:{entry.timeframe} (group {entry.group_name})")
        return
    try:
        entry, created = asyncio.run(_closing(service, service.watch(sym, tf, exchange, source="cli")))
    except BadSymbolError as err:
        hint = getattr(err, "suggestions", None)
        if hint and "did you mean" not in str(err).lower():
            raise BadSymbolError(f"{err} (did you mean: {', '.join(hint)}?)") from None
        raise
    verb = "now watching" if created else "already watching"
    console.print(f"{verb} {entry.exchange}:{entry.symbol}:{entry.timeframe}")


def unwatch(
    symbol: Annotated[str, typer.Argument(help="Market, e.g. BTC/USDT.")],
    timeframe: TimeframeOpt = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Remove a market from the watchlist (stored candles and events stay)."""
    from bot.inputs import parse_symbol, parse_timeframe

    sym = parse_symbol(symbol)
    service = _service(config, db)
    n = asyncio.run(service.unwatch(sym, parse_timeframe(timeframe) if timeframe else None))
    console.print(f"removed {n} watchlist entr{'y' if n == 1 else 'ies'} for {sym}")


def watchlist(config: ConfigOption = None, db: DbOption = None) -> None:
    """List the watched markets."""
    from rich.table import Table

    entries = asyncio.run(_service(config, db).watchlist())
    table = Table("exchange", "symbol", "timeframe", "group", "from", "added", "last error")
    for e in entries:
        origin = e.source or "not recorded"
        added = f"{e.created_at:%Y-%m-%d %H:%M}"
        table.add_row(e.exchange, e.symbol, e.timeframe, e.group_name or "", origin, added, e.last_error or "")
    console.print(table if entries else "the watchlist is empty")


def events(
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Only this market.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="How many, newest first.")] = 20,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Show stored anomaly events, newest first."""
    from rich.table import Table

    from bot.inputs import parse_symbol

    rows = asyncio.run(_service(config, db).events(parse_symbol(symbol) if symbol else None, limit))
    table = Table("bar (UTC)", "symbol", "tf", "detector", "score / thr", "severity")
    for e in rows:
        when = f"{datetime.fromtimestamp(e.bar_ts / 1000, UTC):%Y-%m-%d %H:%M}"
        table.add_row(when, e.symbol, e.timeframe, e.detector, f"{e.score:.4g} / {e.threshold:.4g}", e.severity)
    console.print(table if rows else "no events")


def chart(
    symbol: Annotated[str, typer.Argument(help="A watched market.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="PNG file to write.")],
    period: Annotated[str, typer.Option(help="How far back, e.g. 24h, 7d.")] = "7d",
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Draw a watched market's candles, volume and events to a PNG."""
    from bot.inputs import parse_duration, parse_symbol

    sym = parse_symbol(symbol)
    span = parse_duration(period, maximum=timedelta(days=3650))
    png = asyncio.run(_service(config, db).chart(sym, span, max_bars=5000))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(png)
    console.print(f"wrote {out} ({len(png) / 1024:.0f} KB)")


def flush(config: ConfigOption = None, db: DbOption = None) -> None:
    """Send every pending alert delivery now (Telegram with a token; console and PNG files otherwise)."""
    from bot.alerts.dispatcher import make_dispatcher

    cfg = load_cli_config(config, db)
    factory = open_cli_database(cfg)

    async def run() -> Any:
        if cfg.telegram.token is None:
            dispatcher = make_dispatcher(cfg, factory, console=console)
            try:
                return await dispatcher.flush()
            finally:
                dispatcher.close()
        from telegram import Bot

        token = cfg.telegram.token.get_secret_value()
        async with Bot(token, base_url=cfg.telegram.base_url, base_file_url=cfg.telegram.base_file_url) as bot:
            dispatcher = make_dispatcher(cfg, factory, bot=bot, console=console)
            try:
                return await dispatcher.flush()
            finally:
                dispatcher.close()

    r = asyncio.run(run())
    console.print(
        f"sent {r.sent}, retrying {r.retried}, failed {r.failed}, recovered after a crash {r.recovered}; "
        f"charts: sent {r.charts_sent}, retrying {r.charts_retried}, failed {r.charts_failed}"
    )


def run_bot(config: ConfigOption = None, db: DbOption = None) -> None:
    """Run only the Telegram bot (long polling, or a webhook with telegram.mode = "webhook")."""
    from telegram import Update

    from bot.runtime.compose import build_service
    from bot.runtime.logs import config_secrets, configure_logging
    from bot.runtime.seed import seed_watchlist_from_config
    from bot.telegram.application import build_application
    from bot.telegram.context import AccessPolicy, BotServices
    from feeds.pool import FeedPool

    cfg = load_cli_config(config, db)
    configure_logging(cfg.logging.level, cfg.logging.format, config_secrets(cfg))
    feeds = FeedPool(cfg.exchanges)
    factory = open_cli_database(cfg)
    seed_watchlist_from_config(cfg, factory)
    service = build_service(cfg, factory, feeds=feeds)
    application = build_application(cfg, BotServices(service, AccessPolicy.from_config(cfg.telegram)))

    async def post_shutdown(_app: Any) -> None:
        await feeds.close()

    application.post_shutdown = post_shutdown
    tg = cfg.telegram
    if tg.mode == "webhook":
        from urllib.parse import urlparse

        assert tg.webhook_url is not None  # the config validator insists
        application.run_webhook(
            listen=tg.webhook_listen,
            port=tg.webhook_port,
            url_path=urlparse(tg.webhook_url).path.lstrip("/"),
            webhook_url=tg.webhook_url,
            secret_token=webhook_secret(cfg.telegram.token.get_secret_value()),  # type: ignore[union-attr]
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES)


def webhook_secret(token: str) -> str:
    """The ``secret_token`` Telegram sends back on every webhook call, derived from the bot token.

    Without it anyone who finds the webhook URL could post forged updates.
    Derived (not configured) so there is nothing more to keep secret; a hash,
    so the token itself never travels in a header.
    """
    import hashlib

    return hashlib.sha256(b"vigil-webhook:" + token.encode()).hexdigest()


def register(app: typer.Typer) -> None:
    """Add the bot's commands to ``vigil``."""
    app.command("watch")(watch)
    app.command("unwatch")(unwatch)
    app.command("watchlist")(watchlist)
    app.command("events")(events)
    app.command("chart")(chart)
    app.command("bot")(run_bot)
    alerts = typer.Typer(help="The alert outbox.", no_args_is_help=True)
    alerts.command("flush")(flush)
    app.add_typer(alerts, name="alerts")
