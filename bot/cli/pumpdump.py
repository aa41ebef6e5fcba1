"""``vigil pumpdump train|evaluate``: the CNN-LSTM on La Morgia features files.

Other tools depend on these names and on the JSON written by ``evaluate``
(``precision, recall, f1, auc_roc, auc_pr, event_hit_rate``). TensorFlow is imported only
inside the command bodies.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from bot.cli.common import ConfigOption, console, load_cli_config

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["register"]

pump_app = typer.Typer(
    help="Pump-and-dump CNN-LSTM: train and evaluate on La Morgia feature files.", no_args_is_help=True
)


def _read_tables(files: list[Path]) -> pd.DataFrame:
    import pandas as pd

    from core.errors import InputError
    from detectors.pump.features import read_feature_file

    tables = [read_feature_file(f) for f in files]
    if len(tables) == 1:
        return tables[0]
    seen: dict[int, Path] = {}
    for f, t in zip(files, tables, strict=True):
        for event in t["pump_index"].unique().tolist():
            if event in seen:
                raise InputError(f"{f}: pump_index {event} also appears in {seen[event]}; event ids must be unique")
            seen[event] = f
    return pd.concat(tables, ignore_index=True)


@pump_app.command("train")
def train(
    features: Annotated[list[Path], typer.Option("--features", help="La Morgia features CSV (repeatable).")],
    model: Annotated[Path, typer.Option("--model", help="Directory to write the model to.")],
    lookback: Annotated[int, typer.Option(help="Rows per sequence (the event's rows up to the scored one).")] = 4,
    epochs: Annotated[int, typer.Option(help="Training epochs per network.")] = 15,
    ensemble: Annotated[int, typer.Option(help="Networks averaged, one per cross-fitting fold of the events.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed (weights and the event folds).")] = 0,
) -> None:
    """Train the CNN-LSTM (detectors.pump.detector.CHUNK_RECIPE); the threshold is the best-F1 point on
    out-of-fold scores of the training events (each scored by the network that never saw it)."""
    from detectors.pump.detector import CHUNK_RECIPE, PumpDumpDetector

    table = _read_tables(features)
    settings = {**CHUNK_RECIPE, "lookback": lookback, "epochs": epochs, "ensemble": ensemble}
    with console.status(f"training {ensemble} networks on {len(table)} rows, {table['pump_index'].nunique()} events"):
        det = PumpDumpDetector(**settings, random_state=seed)
        det.fit_table(table)
    det.save(model)
    console.print(f"model saved to {model} (threshold {det.threshold_:.4f})")


@pump_app.command("evaluate")
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="Directory written by `vigil pumpdump train`.")],
    features: Annotated[list[Path], typer.Option("--features", help="Labelled features CSV (repeatable).")],
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics as JSON here.")] = None,
) -> None:
    """Score every row causally with the training threshold; print and optionally save the metrics."""
    from rich.table import Table

    from detectors.pump.detector import PumpDumpDetector
    from detectors.pump.metrics import pump_metrics

    det = PumpDumpDetector.load(model)
    table = _read_tables(features)
    scores = det.score_table(table)  # raises DetectorError when the model is not fitted
    threshold = float(det.threshold_ or 0.0)
    metrics = pump_metrics(table["pump_index"].to_numpy(), table["gt"].to_numpy(), scores, threshold)
    out = Table(title=f"pump_dump on {', '.join(str(f) for f in features)} (threshold {threshold:.4f})")
    for key in metrics:
        out.add_column(key, justify="right")
    out.add_row(*(f"{v:.3f}" for v in metrics.values()))
    console.print(out)
    if json_out is not None:
        clean = {k: (None if math.isnan(v) else v) for k, v in metrics.items()}
        json_out.write_text(json.dumps(clean, indent=2))
        console.print(f"metrics written to {json_out}")


@pump_app.command("pretrain")
def pretrain(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the model folders (the package's own: detectors/pump/pretrained).")
    ],
    grain: Annotated[str, typer.Option(help="candles, chunks or both.")] = "both",
    tiny: Annotated[bool, typer.Option(help="The same recipe on a sliver of the data (seconds; for tests).")] = False,
) -> None:
    """Make the shipped pump models: seeded training on synthetic data, then the alert-budget threshold
    (bot/pretrain.py says which data and seeds; they are recorded in each model's pump_dump.json)."""
    from bot.pretrain import make_pretrained
    from core.errors import InputError

    grains = {"both": ("candles", "chunks"), "candles": ("candles",), "chunks": ("chunks",)}.get(grain)
    if grains is None:
        raise InputError(f"--grain: expected candles, chunks or both, got {grain!r}")
    with console.status("training and calibrating (minutes; --tiny takes seconds)"):
        make_pretrained(out, tiny=tiny, grains=grains, say=console.print)
    console.print(f"models written under {out}")


@pump_app.command("build-dataset")
def build_dataset(
    events: Annotated[Path, typer.Option("--events", help="Events CSV: symbol,date,hour[,exchange] (UTC).")],
    exchange: Annotated[str, typer.Option("--exchange", help="ccxt exchange id, e.g. binance.")],
    out: Annotated[Path, typer.Option("--out", help="CSV to write.")],
    before: Annotated[str, typer.Option("--before", help="History before each pump, e.g. 6h.")] = "6h",
    after: Annotated[str, typer.Option("--after", help="Time after each pump, e.g. 1h.")] = "1h",
    quote: Annotated[str, typer.Option("--quote", help="Quote currency of the pumped pairs.")] = "BTC",
    config: ConfigOption = None,
) -> None:
    """Fetch 1m candles around every listed pump (ccxt) and write a labelled set (gt=1 on the pump bar)."""
    import asyncio
    from collections.abc import Callable

    from rich.progress import Progress

    from core.errors import InputError
    from core.timeframes import timeframe_to_ms
    from detectors.pump.dataset import build_pump_dataset, read_pump_events
    from feeds.exchange import ExchangeFeed

    spans = {}
    for key, value in (("--before", before), ("--after", after)):
        try:
            spans[key] = timeframe_to_ms(value)
        except ValueError as err:
            raise InputError(f"{key}: {err}") from None
    cfg = load_cli_config(config)
    ex_cfg = cfg.exchanges.get(exchange)
    table = read_pump_events(events, exchange)
    if table.empty:
        raise InputError(f"{events}: no events on exchange {exchange!r}")

    async def run(advance: Callable[[], None]) -> tuple[pd.DataFrame, list[str]]:
        async with ExchangeFeed(exchange, ex_cfg) as feed:
            return await build_pump_dataset(
                feed,
                table,
                _timedelta(spans["--before"]),
                _timedelta(spans["--after"]),
                quote=quote,
                progress=advance,
            )

    with Progress(console=console) as progress:
        task = progress.add_task(f"fetching {len(table)} events from {exchange}", total=len(table))
        data, skipped = asyncio.run(run(lambda: progress.advance(task)))
    for line in skipped:
        console.print(f"[yellow]skipped:[/] {line}")
    data.to_csv(out, index=False)
    n_events = data["pump_index"].nunique() if len(data) else 0
    console.print(f"wrote {len(data)} rows ({n_events} events, {len(skipped)} skipped) to {out}")


def _timedelta(ms: int) -> pd.Timedelta:
    import pandas as pd

    return pd.Timedelta(milliseconds=ms)


def register(app: typer.Typer) -> None:
    """Add the ``pumpdump`` command group to ``vigil``."""
    app.add_typer(pump_app, name="pumpdump")
