"""The ``vigil`` command line.

This module only wires: each package contributes its commands through a
``register(app)`` function in its own ``cli`` module. Heavy libraries
(TensorFlow, vectorbt, ccxt) are imported inside the command bodies that
need them, so ``vigil --help`` answers in well under a second.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import (
    ConfigOption,
    DbOption,
    GuardedGroup,
    console,
    load_cli_config,
    open_cli_database,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="vigil",
    help="vigil: crypto market surveillance. Watches coins, finds anomalies, alerts on Telegram, backtests.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=GuardedGroup,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
config_app = typer.Typer(help="Configuration file.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None, db: DbOption = None) -> None:
    """Create or migrate the schema (safe to repeat), repair missing tables and indexes, seed the watchlist."""
    from bot.runtime.seed import seed_watchlist_from_config
    from core.errors import StorageError
    from storage.db import make_engine, make_sessionmaker, upgrade
    from storage.schema import repair_schema, unrepaired_message

    cfg = load_cli_config(config, db)
    engine = make_engine(cfg.database.url)
    revision = upgrade(engine)
    report = repair_schema(engine)
    for line in report.repaired:
        console.print(f"[yellow]repaired:[/] {line} (it was missing although the revision is {revision})")
    for line in report.extra:
        console.print(f"note: {line} (left alone)")
    if not report.ok:
        raise StorageError(unrepaired_message(report))
    console.print(f"database at revision {revision}: {engine.url.render_as_string(hide_password=True)}")
    seeded = seed_watchlist_from_config(cfg, make_sessionmaker(engine))
    if seeded:
        console.print(f"watchlist: {len(seeded)} market(s) from the config added; from now on chat and CLI rule")


@config_app.command("check")
def config_check(config: ConfigOption = None) -> None:
    """Validate a config file and print what it resolves to (secrets hidden).

    A detector whose table sets no ``threshold`` runs with its own tuned defaults (one for
    candles, one for raw series); those are shown in its place, with every key filled in.
    """
    import json

    from detectors.registry import default_thresholds

    cfg = load_cli_config(config)
    data = json.loads(cfg.model_dump_json(exclude_none=True))
    for name, table in data.get("detectors", {}).items():
        if "threshold" not in cfg.detectors[name].model_fields_set:
            table["threshold"] = {"detector default": default_thresholds(name)}
    console.print_json(json.dumps(data))


def _market_options(exchange: str, symbol: str) -> tuple[str, str]:
    """``--exchange`` and ``--symbol`` checked like chat input (an empty or marked-up value is refused)."""
    from bot.inputs import parse_exchange, parse_symbol
    from core.errors import InputError

    try:
        return parse_exchange(exchange), parse_symbol(symbol)
    except InputError as err:
        option = "--exchange" if "exchange" in str(err) else "--symbol"
        raise InputError(f"{option}: {err}") from None


@app.command("import-candles")
def import_candles(
    file: Annotated[Path, typer.Argument(help="CSV with timestamp_ms (or ISO timestamp),open,high,low,close,volume.")],
    exchange: Annotated[str, typer.Option(help="Exchange id, e.g. binance.")],
    symbol: Annotated[str, typer.Option(help="Market symbol, e.g. BTC/USDT.")],
    timeframe: Annotated[str, typer.Option(help="Bar length, e.g. 1h.")],
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Import candles from a CSV file. All rows or none: a bad line aborts the import."""
    from core.errors import InputError
    from core.timeframes import timeframe_to_ms
    from storage.candle_csv import check_candles, read_candle_csv
    from storage.candles import candle_count, upsert_candles
    from storage.db import session_scope

    exchange, symbol = _market_options(exchange, symbol)
    try:
        step = timeframe_to_ms(timeframe)
    except ValueError as err:
        raise InputError(f"--timeframe: {err}") from None
    frame = read_candle_csv(file)
    report = check_candles(frame, step)
    factory = open_cli_database(load_cli_config(config, db))
    with session_scope(factory) as session:
        before = candle_count(session, exchange, symbol.upper())
        upsert_candles(session, exchange, symbol.upper(), timeframe, frame)
        after = candle_count(session, exchange, symbol.upper())
    console.print(
        f"imported {len(frame)} rows from {file} into {exchange}:{symbol.upper()}:{timeframe} "
        f"({after - before} new, {len(frame) - (after - before)} already present); "
        f"gaps: {report.gaps} ({report.missing_bars} missing bars)"
    )
    for problem in report.problems:
        console.print(f"[yellow]warning:[/] {problem}")


@app.command("export-candles")
def export_candles(
    exchange: Annotated[str, typer.Option(help="Exchange id.")],
    symbol: Annotated[str, typer.Option(help="Market symbol.")],
    timeframe: Annotated[str, typer.Option(help="Bar length.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="CSV file to write.")],
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Export stored candles to a CSV in the import format."""
    from core.errors import InputError
    from storage.candle_csv import write_candle_csv
    from storage.candles import load_candles
    from storage.db import session_scope

    exchange, symbol = _market_options(exchange, symbol)
    factory = open_cli_database(load_cli_config(config, db))
    with session_scope(factory) as session:
        frame = load_candles(session, exchange, symbol.upper(), timeframe)
    if frame.empty:
        raise InputError(f"no candles stored for {exchange}:{symbol.upper()}:{timeframe}")
    write_candle_csv(frame, out)
    console.print(f"wrote {len(frame)} rows to {out}")


def _register_subcommands() -> None:
    """Let each area add its commands (kept light: no heavy imports at this point)."""
    from bot.cli import backtest, detectors, feeds, pumpdump, runtime, watchlist

    for module in (feeds, detectors, pumpdump, backtest, watchlist, runtime):
        module.register(app)


_register_subcommands()


def main() -> None:
    """The ``vigil`` entry point: last-resort handlers first, so nothing escapes as a traceback."""
    from bot.toplevel import install

    install()
    app(prog_name="vigil")


if __name__ == "__main__":
    main()
