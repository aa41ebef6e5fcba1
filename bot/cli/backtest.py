"""``vigil backtest``: run a strategy on events from a CSV file or the database.

Heavy imports (vectorbt, numba, matplotlib) happen inside the command body,
so ``vigil --help`` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import ConfigOption, DbOption, console, load_cli_config, open_cli_database

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("backtest")(backtest)


def backtest(
    candles: Annotated[
        Path | None, typer.Option(help="Candle CSV in the import format (timestamp_ms,open,...).")
    ] = None,
    events: Annotated[
        Path | None, typer.Option(help="Events CSV: timestamp (ISO or epoch ms), score[, detector, symbol].")
    ] = None,
    strategy: Annotated[str | None, typer.Option(help="Strategy name (fixed_hold, bracket, trailing, fade).")] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy field override key=value.")] = None,
    symbol: Annotated[
        str | None, typer.Option(help="Symbol, e.g. BTC/USDT (database mode, or label for --candles).")
    ] = None,
    detector: Annotated[
        str | None, typer.Option(help="Only events of this detector (walk-forward: the detector to train).")
    ] = None,
    exchange: Annotated[str, typer.Option(help="Exchange id (database mode).")] = "binance",
    timeframe: Annotated[str, typer.Option(help="Bar length (database mode).")] = "1h",
    period: Annotated[str | None, typer.Option(help="Database mode: only the last N h/d/w, e.g. 90d.")] = None,
    walk_forward: Annotated[
        bool,
        typer.Option("--walk-forward", help="Regenerate events with the detector retrained on rolling past windows."),
    ] = False,
    train_bars: Annotated[int, typer.Option(help="Walk-forward training window, bars.")] = 720,
    retrain_every: Annotated[int, typer.Option(help="Walk-forward refit interval, bars.")] = 168,
    detector_param: Annotated[
        list[str] | None, typer.Option("--detector-param", help="Walk-forward detector hyper-parameter key=value.")
    ] = None,
    grid: Annotated[
        list[str] | None, typer.Option("--grid", help="Sweep key=v1,v2,... (repeatable): runs a parameter grid.")
    ] = None,
    heatmap: Annotated[Path | None, typer.Option(help="Sweep heat map PNG.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write metrics and every trade as JSON.")] = None,
    png: Annotated[Path | None, typer.Option(help="Write the equity and drawdown chart (PNG).")] = None,
    html_out: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report.")] = None,
    random_draws: Annotated[int, typer.Option(help="Random-entry baseline draws.")] = 100,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Backtest a strategy on anomaly events; compares with buy-and-hold and random entries."""
    from backtest.strategy import make_strategy, parse_param_args
    from core.errors import InputError

    cfg = load_cli_config(config, db)
    name = strategy or cfg.backtest.strategy
    defaults: dict[str, object] = {
        "fees": cfg.backtest.fees,
        "slippage": cfg.backtest.slippage,
        "init_cash": cfg.backtest.init_cash,
    }
    if name == "fixed_hold":
        defaults["hold_bars"] = cfg.backtest.hold_bars
    overrides = parse_param_args(param or [])
    if detector and not walk_forward:
        overrides.setdefault("detector", detector)
    strat = make_strategy(name, {**defaults, **overrides})

    wf = {"train_bars": train_bars, "retrain_every": retrain_every, "params": _typed(detector_param or [])}
    if candles is None and symbol is None:
        raise InputError("give --candles FILE.csv (with --events or --walk-forward) or --symbol for stored data")
    if candles is not None:
        frames, ev = _file_inputs(candles, events, symbol, detector, walk_forward, wf)
    else:
        frames, ev = _db_inputs(cfg, exchange, symbol or "", timeframe, detector, period, walk_forward, wf)
    if grid:
        _sweep(frames, ev, strat, name, grid, heatmap, json_out)
        return
    from backtest.engine import run_backtest
    from backtest.report import equity_png, html_report, write_json

    with console.status("simulating"):
        result = run_backtest(frames, ev, strat, random_draws=random_draws)
    console.print(_metrics_table(result))
    if result.events_used < len(ev):
        console.print(
            f"[yellow]note:[/] {len(ev) - result.events_used} of {len(ev)} events did not match the strategy's "
            "trigger (detector, min_score, min_severity, symbols) or the candles' symbol"
        )
    if json_out:
        write_json(result, json_out)
        console.print(f"wrote {json_out} ({len(result.trades)} trades)")
    if png:
        equity_png(result, png)
        console.print(f"wrote {png}")
    if html_out:
        html_report(result, html_out)
        console.print(f"wrote {html_out}")


def _metrics_table(result):  # type: ignore[no-untyped-def]
    """backtest.report.metrics_rows drawn as a rich Table (rich stays in the application)."""
    from rich.table import Table

    from backtest.report import metrics_rows

    data = metrics_rows(result)
    table = Table(title=data.title, caption=data.caption)
    table.add_column(data.columns[0])
    for label in data.columns[1:]:
        table.add_column(label, justify="right")
    for row in data.rows:
        table.add_row(*row)
    return table


def _typed(items: list[str]) -> dict[str, object]:
    """``["epochs=1", "lr=0.01", "kind=x"]`` -> ints, floats, or text, for detector constructors."""
    from backtest.strategy import parse_param_args

    out: dict[str, object] = {}
    for key, raw in parse_param_args(items).items():
        for kind in (int, float):
            try:
                out[key] = kind(raw)
                break
            except ValueError:
                continue
        else:
            out[key] = raw
    return out


def _walk_forward(frames, detector, wf):  # type: ignore[no-untyped-def]
    from rich.progress import Progress

    from backtest.events import normalize_events
    from backtest.walkforward import detector_factory, walk_forward_events
    from core.errors import InputError

    if not detector:
        raise InputError("--walk-forward needs --detector NAME")
    maker = detector_factory(detector, wf["params"])
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task(f"walk-forward {detector}", total=None)
        raw = walk_forward_events(
            frames,
            maker,
            train_bars=wf["train_bars"],
            retrain_every=wf["retrain_every"],
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    return normalize_events(raw, where=f"walk-forward {detector}")


def _file_inputs(candles, events, symbol, detector, walk_forward, wf):  # type: ignore[no-untyped-def]
    from backtest.events import read_events_csv
    from core.errors import InputError
    from storage.candle_csv import read_candle_csv

    label = (symbol or "").upper()
    frames = {label: read_candle_csv(candles)}
    if walk_forward:
        return frames, _walk_forward(frames, detector, wf)
    if events is None:
        raise InputError("--candles needs --events EVENTS.csv (or --walk-forward --detector NAME)")
    return frames, read_events_csv(events, default_symbol=label or None)


def _db_inputs(cfg, exchange, symbol, timeframe, detector, period, walk_forward, wf):  # type: ignore[no-untyped-def]
    from backtest.events import normalize_events
    from backtest.service import parse_period
    from core.errors import BacktestError
    from storage.candles import load_candles
    from storage.events import events_frame, list_events

    factory = open_cli_database(cfg)
    sym = symbol.upper()
    start_ms, end_ms = parse_period(period)
    with factory() as session:
        frame = load_candles(session, exchange, sym, timeframe, start_ms=start_ms, end_ms=end_ms)
        stored = list_events(
            session,
            exchange=exchange,
            symbol=sym,
            timeframe=timeframe,
            detector=detector,
            since_ms=start_ms,
            until_ms=end_ms,
            newest_first=False,
        )
    if len(frame) < 2:
        raise BacktestError(f"{exchange}:{sym}:{timeframe}: {len(frame)} stored candles; import or sync some first")
    frames = {sym: frame}
    if walk_forward:
        return frames, _walk_forward(frames, detector, wf)
    return frames, normalize_events(events_frame(stored), default_symbol=sym)


def _sweep(frames, ev, strat, name, grid_items, heatmap, json_out):  # type: ignore[no-untyped-def]
    import json
    import math

    from rich.table import Table

    from backtest.sweep import heatmap_png, parse_grid, run_sweep

    grid = parse_grid(grid_items, name)
    with console.status("sweeping"):
        result = run_sweep(frames, ev, strat, grid)
    table = Table(title=f"{name} sweep: {len(result.table)} combinations x {len(result.symbols)} symbols")
    for col in result.table.columns:
        table.add_column(col, justify="right")
    best = result.table.sort_values("total_return", ascending=False).head(20)
    for row in best.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    if heatmap:
        heatmap_png(result, path=heatmap)
        console.print(f"wrote {heatmap}")
    if json_out:
        records = [
            {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in rec.items()}
            for rec in result.table.to_dict(orient="records")
        ]
        json_out.write_text(
            json.dumps({"strategy": strat.params(), "grid": grid, "results": records}, indent=2, default=float)
        )
        console.print(f"wrote {json_out}")
