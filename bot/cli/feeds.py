"""``vigil`` commands of the feeds package: ``backfill``, ``check-candles``, ``synth``.

Each command keeps ccxt and pandas imports inside its body so ``vigil --help``
stays fast (``tests/bot/cli/test_cli_candles.py`` checks that).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import ConfigOption, DbOption, console, load_cli_config, open_cli_database

__all__ = ["register"]


def _parse_time(value: str, option: str) -> int:
    """ISO date/time (UTC unless an offset is given) or epoch ms -> epoch ms."""
    import pandas as pd

    from core.errors import InputError

    text = value.strip()
    if text.isdigit():
        return int(text)
    try:
        ts = pd.Timestamp(text)
    except ValueError:
        raise InputError(f"{option}: expected an ISO date such as 2024-01-01 or epoch ms, got {value!r}") from None
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").value // 1_000_000)


def backfill(
    exchange: Annotated[str, typer.Option(help="ccxt exchange id, e.g. binance.")],
    symbol: Annotated[str, typer.Option(help="Market symbol, e.g. BTC/USDT.")],
    since: Annotated[str, typer.Option(help="Start (UTC date/time or epoch ms), e.g. 2024-01-01.")],
    timeframe: Annotated[str, typer.Option(help="Bar length, e.g. 1h.")] = "1h",
    until: Annotated[str | None, typer.Option(help="End, exclusive (default: the last closed bar).")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Download closed candles into the database; resumable, fills holes in the stored range."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from core.config import ExchangeConfig
    from core.errors import InputError
    from core.timeframes import timeframe_to_ms
    from feeds.backfill import sync_candles
    from feeds.exchange import ExchangeFeed

    try:
        timeframe_to_ms(timeframe)
    except ValueError as err:
        raise InputError(f"--timeframe: {err}") from None
    since_ms = _parse_time(since, "--since")
    until_ms = _parse_time(until, "--until") if until else None
    if until_ms is not None and until_ms <= since_ms:
        raise InputError(f"--until ({until}) must be after --since ({since})")
    cfg = load_cli_config(config, db)
    ex_cfg = cfg.exchanges.get(exchange, ExchangeConfig())
    factory = open_cli_database(cfg)

    async def run() -> object:
        async with ExchangeFeed(exchange, ex_cfg) as feed:
            with Progress(
                TextColumn(f"{exchange} {symbol.upper()} {timeframe}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=False,
            ) as bar:
                task = bar.add_task("bars", total=None)
                return await sync_candles(
                    feed,
                    factory,
                    symbol,
                    timeframe,
                    since_ms=since_ms,
                    now_ms=until_ms,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )

    result = asyncio.run(run())
    import pandas as pd

    def fmt(ms: int | None) -> str:
        return "-" if ms is None else str(pd.Timestamp(ms, unit="ms", tz="UTC"))

    console.print(
        f"{exchange}:{symbol.upper()}:{timeframe}: {result.rows_added} rows added, "  # type: ignore[attr-defined]
        f"{result.gaps_filled} gaps filled, {result.gaps_remaining} gaps remaining; "  # type: ignore[attr-defined]
        f"stored {fmt(result.first_ts)} -> {fmt(result.last_ts)}"  # type: ignore[attr-defined]
    )


def check_candles_cmd(
    files: Annotated[list[Path], typer.Argument(help="Candle CSV files in the import format.")],
    timeframe: Annotated[
        str | None, typer.Option(help="Expected bar length, e.g. 1h (default: the median step of each file).")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print a Markdown table (for docs).")] = False,
) -> None:
    """Validate candle CSV files and report rows, range, gaps, missing bars, stale runs and problems."""
    from rich.markup import escape

    from core.errors import BotError, InputError
    from core.timeframes import timeframe_to_ms
    from storage.candle_csv import check_candles, read_candle_csv

    step = None
    if timeframe:
        try:
            step = timeframe_to_ms(timeframe)
        except ValueError as err:
            raise InputError(f"--timeframe: {err}") from None
    header = [
        "file",
        "rows",
        "first",
        "last",
        "step",
        "gaps",
        "missing bars",
        "max gap (bars)",
        "stale runs",
        "problems",
    ]
    rows: list[list[str]] = []
    failed = 0
    for path in files:
        try:
            frame = read_candle_csv(path)
        except BotError as err:
            failed += 1
            rows.append([path.name, *["-"] * 8, f"unreadable: {err}"])
            continue
        r = check_candles(frame, step if step is not None else _timeframe_from_name(path.name))
        failed += not r.ok
        rows.append(
            [
                path.name,
                str(r.rows),
                f"{r.first:%Y-%m-%d %H:%M}" if r.first is not None else "-",
                f"{r.last:%Y-%m-%d %H:%M}" if r.last is not None else "-",
                _step_label(r.step_ms),
                str(r.gaps),
                str(r.missing_bars),
                str(r.max_gap_bars),
                str(r.stale_runs),
                "; ".join(r.problems) or "ok",
            ]
        )
    if markdown:
        typer.echo("| " + " | ".join(header) + " |")
        typer.echo("|" + "---|" * len(header))
        for row in rows:
            typer.echo("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    else:
        for row in rows:
            console.print(
                f"[bold]{row[0]}[/]: {row[1]} rows, {row[2]} -> {row[3]} UTC, step {row[4]}; "
                f"{row[5]} gaps ({row[6]} missing bars, longest {row[7]}), {row[8]} stale runs; "
                f"{'[green]ok[/]' if row[9] == 'ok' else '[red]' + escape(row[9]) + '[/]'}",
                highlight=False,
                soft_wrap=True,
            )
    if failed:
        raise typer.Exit(1)


def synth(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the candle, social and label CSVs.")],
    symbols: Annotated[int, typer.Option(help="Number of symbols (SYN000/USDT, ...).", min=1)] = 20,
    days: Annotated[float, typer.Option(help="Days of history per symbol.")] = 90,
    timeframe: Annotated[str, typer.Option(help="Bar length, 1m .. 1d.")] = "1h",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 0,
    anomaly_rate: Annotated[
        float | None, typer.Option(help="Anomalies per bar after the first 20% (default 1/300; 0 = none).")
    ] = None,
    faults: Annotated[bool, typer.Option(help="Also plant data faults (gaps, stale candles).")] = True,
    venues: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated venues: write every symbol on each, with planted single-venue dislocations."
        ),
    ] = None,
) -> None:
    """Write a deterministic synthetic market with labelled anomalies (import with `vigil import-candles`)."""
    from rich.progress import Progress

    from feeds.synthetic import generate_market
    from feeds.synthetic_io import write_market

    if venues:
        from bot.inputs import parse_exchanges
        from feeds.synthetic_venues import generate_venue_market
        from feeds.synthetic_venues_io import write_venue_market

        names = parse_exchanges(venues)
        with console.status(f"generating {symbols} assets on {len(names)} venues x {days:g} days of {timeframe} bars"):
            vmarket = generate_venue_market(symbols, names, days, timeframe, seed)
        written = write_venue_market(vmarket, out)
        console.print(
            f"wrote {len(vmarket.candles)} venue series ({len(vmarket.groups)} groups), "
            f"{len(vmarket.labels)} dislocations and {len(written)} files to {out} (seed {seed})"
        )
        return

    with console.status(f"generating {symbols} symbols x {days:g} days of {timeframe} bars"):
        market = generate_market(symbols, days, timeframe, seed, anomaly_rate=anomaly_rate, faults=faults)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing CSVs", total=len(market.candles))
        write_market(market, out, on_file=lambda: progress.advance(task))
    rows = sum(len(f) for f in market.candles.values())
    console.print(
        f"wrote {len(market.candles)} symbols ({rows} candles) and {len(market.labels)} labels to {out} (seed {seed})"
    )


def _timeframe_from_name(name: str) -> int | None:
    """``BTC_USDT-1h.csv`` -> 1h in ms; None when the name carries no timeframe."""
    from core.timeframes import timeframe_to_ms

    stem = name.rsplit(".", 1)[0]
    if "-" not in stem:
        return None
    try:
        return timeframe_to_ms(stem.rsplit("-", 1)[1])
    except ValueError:
        return None


def _step_label(step_ms: int | None) -> str:
    if not step_ms:
        return "-"
    for unit, ms in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if step_ms % ms == 0:
            return f"{step_ms // ms}{unit}"
    return f"{step_ms}ms"


def register(app: typer.Typer) -> None:
    """Add the feeds commands to the ``vigil`` app."""
    app.command("backfill")(backfill)
    app.command("check-candles")(check_candles_cmd)
    app.command("synth")(synth)
