"""``vigil`` commands of the feeds package: ``vigil synth`` (synthetic market files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli_common import console

__all__ = ["register"]


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
) -> None:
    """Write a deterministic synthetic market with labelled anomalies (import with `vigil import-candles`)."""
    from rich.progress import Progress

    from feeds.synthetic import generate_market
    from feeds.synthetic_io import write_market

    with console.status(f"generating {symbols} symbols x {days:g} days of {timeframe} bars"):
        market = generate_market(symbols, days, timeframe, seed, anomaly_rate=anomaly_rate, faults=faults)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("writing CSVs", total=len(market.candles))
        write_market(market, out, on_file=lambda: progress.advance(task))
    rows = sum(len(f) for f in market.candles.values())
    console.print(
        f"wrote {len(market.candles)} symbols ({rows} candles) and {len(market.labels)} labels to {out} (seed {seed})"
    )


def register(app: typer.Typer) -> None:
    """Add the feeds commands to the ``vigil`` app."""
    app.command("synth")(synth)
