"""``vigil run`` and ``vigil demo``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import ConfigOption, DbOption, console, load_cli_config

__all__ = ["register"]


def run(
    config: ConfigOption = None,
    db: DbOption = None,
    models: Annotated[
        Path | None, typer.Option(help="Folder of trained model files (default: the config's paths.models_dir).")
    ] = None,
    no_catch_up: Annotated[bool, typer.Option("--no-catch-up", help="Do not score missed bars at start.")] = False,
) -> None:
    """Run the main job: fetch, score, alert on every candle close until Ctrl-C / SIGTERM."""
    from bot.runtime.logs import config_secrets, configure_logging
    from bot.runtime.scheduler import MainJob

    cfg = load_cli_config(config, db)
    configure_logging(cfg.logging.level, cfg.logging.format, config_secrets(cfg))
    asyncio.run(MainJob(cfg, model_root=models).run(catch_up=not no_catch_up))


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Demo folder (database, charts, models).")] = Path(
        "vigil-demo"
    ),
    symbols: Annotated[int, typer.Option(min=1, max=500, help="Synthetic coins.")] = 10,
    days: Annotated[float, typer.Option(min=3, max=365, help="Days of history to replay.")] = 30.0,
    timeframe: Annotated[str, typer.Option(help="Bar length of the synthetic market.")] = "1h",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic market.")] = 7,
    csv_dir: Annotated[
        Path | None, typer.Option(help="Replay real candle CSVs (BASE_QUOTE-<tf>.csv) instead of a synthetic market.")
    ] = None,
    keep: Annotated[bool, typer.Option(help="Keep the demo folder from a previous run.")] = False,
    streams: Annotated[
        bool,
        typer.Option("--streams", help="Replay live trades with planted pumps through a loopback WebSocket exchange."),
    ] = False,
    minutes: Annotated[float, typer.Option(min=15, max=600, help="--streams: market minutes to replay.")] = 40.0,
    speed: Annotated[float, typer.Option(min=1, max=100, help="--streams: market seconds per wall second.")] = 10.0,
    faults: Annotated[
        bool, typer.Option(help="--streams: disconnect every 30 s, drop and repeat 1 % of messages.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run the main job offline on a synthetic (or CSV) market in accelerated time, then summarize."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    if streams:
        _demo_streams(directory, symbols, minutes, speed, seed, faults, keep, config)
        return

    from bot.runtime.demo import DemoOptions, run_demo, summarize_demo
    from bot.runtime.logs import config_secrets, configure_logging
    from core.errors import InputError
    from core.timeframes import timeframe_to_ms

    try:
        timeframe_to_ms(timeframe)
    except ValueError as err:
        raise InputError(f"--timeframe: {err}") from None
    base = load_cli_config(config)
    configure_logging("WARNING", base.logging.format, config_secrets(base))
    options = DemoOptions(
        directory=directory, symbols=symbols, days=days, timeframe=timeframe, seed=seed, csv_dir=csv_dir, keep=keep
    )
    console.print(
        f"vigil demo: {symbols if csv_dir is None else 'CSV'} coins, {days:g} days of {timeframe} bars, "
        f"folder {directory}/ (first run trains small models)"
    )
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        result = asyncio.run(run_demo(options, base, progress=progress))
    summarize_demo(result, console)


def _demo_streams(
    directory: Path,
    symbols: int,
    minutes: float,
    speed: float,
    seed: int,
    faults: bool,
    keep: bool,
    config: Path | None,
) -> None:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.runtime.demo_streams import StreamDemoOptions, run_stream_demo, summarize_stream_demo
    from bot.runtime.logs import config_secrets, configure_logging

    base = load_cli_config(config)
    configure_logging("WARNING", base.logging.format, config_secrets(base))
    folder = directory if directory != Path("vigil-demo") else Path("vigil-demo-streams")
    options = StreamDemoOptions(
        directory=folder, symbols=symbols, minutes=minutes, speed=speed, seed=seed, faults=faults, keep=keep
    )
    console.print(
        f"vigil demo --streams: {symbols} coins, {minutes:g} minutes of trades at {speed:g}x through a loopback "
        f"Binance WebSocket, folder {folder}/ (the shipped chunk model: no training)"
    )
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        result = asyncio.run(run_stream_demo(options, base, progress=progress))
    summarize_stream_demo(result, console)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)
