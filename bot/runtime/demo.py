"""``vigil demo``: the main job, offline, in accelerated time.

Nothing here is demo-only logic. The synthetic market (or a folder of candle
CSVs) sits behind a :class:`~feeds.replay.ReplayFeed`, and the demo calls
the same :meth:`bot.runtime.cycle.Runtime.run_cycle` that ``vigil run`` schedules.
It simply advances the clock one bar per cycle instead of waiting for it. The
first part of the history is a warm-up: the first cycle backfills it and the
detectors train on it, just as on a fresh install. Every later cycle sees one
new bar per symbol.

At the end it compares the alerts with the injected labels and prints a summary.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from core.config import Config, default_config
from core.timeframes import timeframe_to_ms

__all__ = ["DemoOptions", "DemoResult", "run_demo", "summarize_demo"]

log = logging.getLogger(__name__)

MARKET_KINDS = ("pump_dump", "flash_crash", "volume_spike", "level_shift")

# Small models and short training: the demo trains from scratch in seconds.
DEMO_DETECTORS: dict[str, dict[str, Any]] = {
    "zscore": {},
    "lstm_forecaster": {"params": {"epochs": 4}},
    "lstm_autoencoder": {"params": {"epochs": 4}},
    "pump_dump": {},
}


@dataclass(frozen=True)
class DemoOptions:
    directory: Path = Path("vigil-demo")
    symbols: int = 10
    days: float = 30.0
    timeframe: str = "1h"
    seed: int = 7
    csv_dir: Path | None = None
    warmup_fraction: float = 0.25
    keep: bool = False


@dataclass
class DemoResult:
    directory: Path
    cycles: int
    seconds: float
    events: pd.DataFrame
    labels: pd.DataFrame | None
    chart_dir: Path
    db_url: str
    per_detector: pd.DataFrame | None = None
    stage_s: dict[str, float] = field(default_factory=dict)  # summed over cycles: where the time went


def demo_config(options: DemoOptions, symbols: list[str], timeframe: str, base: Config | None = None) -> Config:
    """Embedded defaults for the demo: SQLite in the demo folder, the replay exchange."""
    directory = options.directory.resolve()
    warm_bars = int(options.days * 86_400_000 / timeframe_to_ms(timeframe) * options.warmup_fraction)
    telegram = base.telegram.model_dump() if base is not None else {}
    if telegram.get("token") is not None:
        telegram["token"] = base.telegram.token.get_secret_value()  # type: ignore[union-attr]
    return default_config(
        database={"url": f"sqlite:///{directory / 'vigil.db'}"},
        exchanges={"replay": {}},
        watchlist=[{"exchange": "replay", "symbol": s, "timeframe": timeframe} for s in symbols],
        detectors=DEMO_DETECTORS,
        telegram=telegram,
        alerts={"chart_dir": str(directory / "charts"), "cooldown_minutes": 0},
        scheduler={"history_bars": max(200, warm_bars + 1)},
    )


def _market(options: DemoOptions) -> tuple[dict[str, pd.DataFrame], str, pd.DataFrame | None]:
    if options.csv_dir is not None:
        from feeds.replay import load_csv_dir

        frames, timeframe = load_csv_dir(options.csv_dir)
        labels_path = options.csv_dir / "labels.csv"
        labels = None
        if labels_path.is_file():
            from feeds.synthetic_io import read_labels

            labels = read_labels(labels_path)
        return frames, timeframe, labels
    from feeds.synthetic import generate_market

    market = generate_market(options.symbols, days=options.days, timeframe=options.timeframe, seed=options.seed)
    return dict(market.candles), market.timeframe, market.labels


async def run_demo(options: DemoOptions, base: Config | None = None, progress: Any = None) -> DemoResult:
    """Replay the market through the main loop; returns what happened."""
    from bot.runtime.compose import compose
    from feeds.pool import FeedPool
    from feeds.replay import ReplayFeed
    from storage.db import open_database

    if options.directory.exists() and not options.keep:
        shutil.rmtree(options.directory)
    options.directory.mkdir(parents=True, exist_ok=True)
    frames, timeframe, labels = _market(options)
    cfg = demo_config(options, sorted(frames), timeframe, base)
    _engine, factory = open_database(cfg.database.url)
    feed = ReplayFeed("replay", frames, timeframe)
    social = [feed.social_source()] if any("social_volume" in f for f in frames.values()) else []
    system = await compose(
        cfg,
        factory,
        feeds=FeedPool(cfg.exchanges, feeds={"replay": feed}),
        model_root=options.directory / "models",
        detector_options={"min_train_rows": 48, "labelled_symbols": 16, "labelled_bars": 1200},
        social=social,
        console_too=True,
        with_application=False,
    )
    runtime, dispatcher = system.runtime, system.dispatcher

    step = timeframe_to_ms(timeframe)
    first, last = feed.span_ms()
    start = first + int((last - first) * options.warmup_fraction) // step * step
    closes = list(range(start, last + 1, step))
    t0 = time.perf_counter()
    task = progress.add_task("replaying", total=len(closes)) if progress is not None else None
    stage_s: dict[str, float] = {}
    for now_ms in closes:
        report = await runtime.run_cycle(timeframe, now_ms=now_ms)
        for stage, took in report.stage_s.items():
            stage_s[stage] = stage_s.get(stage, 0.0) + took
        if progress is not None:
            progress.advance(task)
    await dispatcher.flush()
    await system.aclose()
    seconds = time.perf_counter() - t0

    from storage.events import events_frame, list_events

    with factory() as session:
        events = events_frame(list_events(session, newest_first=False))
    result = DemoResult(
        directory=options.directory,
        cycles=len(closes),
        seconds=seconds,
        events=events,
        labels=labels,
        chart_dir=Path(cfg.alerts.chart_dir),
        db_url=str(cfg.database.url),  # the URL with any password masked
        stage_s=stage_s,
    )
    if labels is not None:
        result.per_detector = score_against_labels(events, labels, step, scored_from=start)
    return result


def score_against_labels(
    events: pd.DataFrame, labels: pd.DataFrame, step_ms: int, *, scored_from: int, tolerance_bars: int = 2
) -> pd.DataFrame:
    """Event-wise precision and recall of each detector's events against injected labels.

    A label is found when an event of that symbol falls inside its window
    (extended by ``tolerance_bars`` after the end); an event is a true alarm
    when it falls inside some label window. Only labels after the warm-up
    count, since nothing was scored before it. Fault labels (gaps, stale bars)
    are not anomalies to find and are left out.
    """
    scored = labels[labels["kind"].isin(MARKET_KINDS)].copy()
    scored = scored[scored["start"] >= pd.Timestamp(scored_from, unit="ms", tz="UTC")]
    tol = pd.Timedelta(milliseconds=step_ms * tolerance_bars)
    rows = []
    detectors = sorted(events["detector"].unique()) if len(events) else []
    for det in [*detectors, "any"]:
        ev = events if det == "any" else events[events["detector"] == det]
        # A detector of one kind of event (a pump classifier's events are of kind pump_dump)
        # is judged on the labels of that kind only; anomaly detectors on every market label.
        kinds = set(ev["kind"]) - {"anomaly"}
        market = scored[scored["kind"].isin(kinds)] if det != "any" and kinds else scored
        found = 0
        for lab in market.itertuples():
            hit = ev[(ev["symbol"] == lab.symbol) & (ev["timestamp"] >= lab.start) & (ev["timestamp"] <= lab.end + tol)]
            found += bool(len(hit))
        true_alarms = 0
        for e in ev.itertuples():
            lab = market[
                (market["symbol"] == e.symbol) & (market["start"] <= e.timestamp) & (market["end"] + tol >= e.timestamp)
            ]
            true_alarms += bool(len(lab))
        precision = true_alarms / len(ev) if len(ev) else float("nan")
        recall = found / len(market) if len(market) else float("nan")
        f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
        rows.append(
            {
                "detector": det,
                "events": len(ev),
                "labels": len(market),
                "found": found,
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    return pd.DataFrame(rows)


def summarize_demo(result: DemoResult, console: Any) -> None:
    """Print the demo's closing summary: events, precision/recall, charts, next steps."""
    from rich.table import Table

    console.rule("[bold]vigil demo summary")
    console.print(
        f"{result.cycles} cycles in {result.seconds:.1f} s; {len(result.events)} events stored in {result.db_url}"
    )
    if result.stage_s:
        spent = ", ".join(f"{stage} {took:.1f} s" for stage, took in result.stage_s.items())
        console.print(f"time per stage, summed over the cycles: {spent}")
    if len(result.events):
        pivot = result.events.pivot_table(
            index="symbol", columns="detector", values="score", aggfunc="count", fill_value=0
        )
        table = Table(title="events per symbol and detector")
        table.add_column("symbol")
        for det in pivot.columns:
            table.add_column(str(det), justify="right")
        for sym, row in pivot.iterrows():
            table.add_row(str(sym), *(str(int(v)) for v in row))
        console.print(table)
    if result.per_detector is not None:
        table = Table(title="alerts against the injected anomalies (event-wise)")
        for col in ("detector", "events", "labels", "found", "precision", "recall", "f1"):
            table.add_column(col, justify="right" if col != "detector" else "left")
        for row in result.per_detector.itertuples():
            table.add_row(
                row.detector,
                str(row.events),
                str(row.labels),
                str(row.found),
                f"{row.precision:.2f}",
                f"{row.recall:.2f}",
                f"{row.f1:.2f}",
            )
        console.print(table)
    charts = sorted(result.chart_dir.glob("*.png")) if result.chart_dir.is_dir() else []
    console.print(f"charts: {len(charts)} PNG files in {result.chart_dir}")
    db = f"--db {result.db_url}"
    sym = result.events["symbol"].iloc[0] if len(result.events) else "SYM0/USDT"
    console.print("next, try:")
    console.print(f"  vigil events {db} --symbol {sym}")
    console.print(f"  vigil backtest {db} --exchange replay --symbol {sym} --timeframe 1h --detector lstm_forecaster")
    console.print("  vigil run --config config.toml     # live, after copying config.example.toml")
