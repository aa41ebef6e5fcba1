"""``vigil score``, ``vigil evaluate``, ``vigil train``, ``vigil detectors``.

TensorFlow and the detector modules are imported inside the command bodies so that
``vigil --help`` stays light.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import ConfigOption, DbOption, console, load_cli_config, open_cli_database
from core.errors import InputError

__all__ = ["register"]


def _parse_params(items: list[str] | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--param: expected KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def score_command(
    detector: Annotated[str, typer.Option("--detector", "-d", help="Detector name (see `vigil detectors`).")],
    input: Annotated[Path, typer.Option("--input", "-i", help="CSV with a timestamp column and numeric columns.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write: timestamp,score,is_anomaly.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns to use (default: all).")] = None,
    train_fraction: Annotated[float, typer.Option(help="Fit on this leading fraction of rows.")] = 0.15,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Detector parameter KEY=VALUE.")] = None,
    with_threshold: Annotated[bool, typer.Option(help="Add a threshold column (for evaluate --plot).")] = False,
    refit_every: Annotated[
        int | None, typer.Option(help="Refit every N rows on past rows only, as a live detector would.")
    ] = None,
    refit_window: Annotated[int | None, typer.Option(help="Rows of history each refit learns from.")] = None,
) -> None:
    """Fit a detector on the first rows of a file, then score every row causally (optionally refitting)."""
    import pandas as pd

    from detectors.io import read_series_csv, repeated_timestamps_note
    from detectors.online import score_online
    from detectors.registry import create_detector

    if not 0 < train_fraction <= 1:
        raise InputError(f"--train-fraction: must be in (0, 1], got {train_fraction}")
    for name, value in (("--refit-every", refit_every), ("--refit-window", refit_window)):
        if value is not None and value < 1:
            raise InputError(f"{name}: must be a positive number of rows, got {value}")
    cols = [c.strip().lower() for c in columns.split(",")] if columns else None
    frame = read_series_csv(input, cols)
    note = repeated_timestamps_note(frame, input)
    if note:
        console.print(note)
    params = {**_parse_params(param), **({"columns": cols} if cols else {})}
    create_detector(detector, **params)  # bad names and parameters fail here, before any training
    n_train = int(len(frame) * train_fraction)
    if n_train < 1:
        raise InputError(f"--train-fraction: {train_fraction} of {len(frame)} rows leaves no training row")
    result = score_online(
        lambda: create_detector(detector, **params),
        frame,
        train_rows=n_train,
        refit_every=refit_every,
        refit_window=refit_window,
    )
    scores, alarms = result.scores, result.alarms
    out = pd.DataFrame(
        {
            "timestamp": frame.index.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "score": scores.to_numpy(),
            "is_anomaly": alarms.astype(int).to_numpy(),
        }
    )
    if with_threshold:
        out["threshold"] = result.thresholds.to_numpy()
    output.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(output, index=False, float_format="%.6g")
    refits = f", refitted {len(result.refits) - 1} times" if len(result.refits) > 1 else ""
    alerts = int((alarms & ~alarms.shift(1, fill_value=False)).sum())
    console.print(
        f"{detector}: fitted on {n_train} of {len(frame)} rows{refits}, warm-up {result.detector.warmup}, "
        f"threshold {result.detector.threshold_.policy}; {int(alarms.sum())} anomalous rows in {alerts} alerts; "
        f"wrote {output}"
    )


def _metric_table(results: dict[str, dict[str, float]]) -> Any:
    from rich.table import Table

    table = Table(title="detector evaluation (faults excluded)")
    keys = ["event_precision", "event_recall", "event_f1", "point_precision", "point_recall", "point_f1"]
    keys += ["auc_roc", "auc_pr", "mean_delay_rows", "events", "found", "alarm_runs"]
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    for k in keys:
        table.add_row(k, *[("-" if math.isnan(m[k]) else f"{m[k]:.3g}") for m in results.values()])
    return table


def evaluate_command(
    scores: Annotated[list[Path], typer.Option("--scores", "-s", help="Score CSV(s) from `vigil score`.")],
    labels: Annotated[Path, typer.Option("--labels", "-l", help="CSV start,end[,symbol,kind].")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    plot: Annotated[Path | None, typer.Option(help="PNG: score, threshold and labelled anomalies.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Use only labels for this symbol.")] = None,
    nab: Annotated[
        bool, typer.Option("--nab", help="NAB scores (standard, low-FP, low-FN) and overlap F1 of one file.")
    ] = False,
    nab_key: Annotated[
        str | None, typer.Option(help="With --labels NAB's combined_windows.json: the file's key (folder/file.csv).")
    ] = None,
) -> None:
    """Point-wise and event-wise precision/recall/F1, AUC-ROC/PR and detection delay (faults excluded).

    With ``--nab``: NAB's scores of the alarms as alerted (one per incident) and of the raw score at
    its best threshold for this file, and the overlap precision/recall/F1 (alarms within 48 rows merged).
    """
    import pandas as pd

    from detectors.io import read_labels, read_scores
    from detectors.metrics import evaluate_series, summarize

    if nab:
        _evaluate_nab(scores, labels, nab_key, json_out)
        return
    lab = read_labels(labels)
    results: dict[str, dict[str, float]] = {}
    for path in scores:
        sc = read_scores(path)
        parts = []
        for sym, group in sc.groupby("symbol", sort=False):
            wanted = symbol or sym
            sym_labels = lab[(lab["symbol"] == wanted) | (lab["symbol"] == "")] if wanted else lab
            series = pd.Series(group["score"].to_numpy(), index=pd.DatetimeIndex(group["time"]))
            alarms = pd.Series(group["is_anomaly"].to_numpy(), index=series.index)
            parts.append(evaluate_series(series, alarms, sym_labels))
        results[str(path)] = summarize(parts)
        if plot is not None:
            _plot(sc, lab, plot if len(scores) == 1 else plot.with_name(f"{plot.stem}-{path.stem}{plot.suffix}"))
    if json_out:
        typer.echo(json.dumps(results, indent=1, default=float))
    else:
        console.print(_metric_table(results))


def _nab_windows(labels: Path, key: str | None) -> list[tuple[Any, Any]]:
    """Windows as (start, end) UTC timestamps from a labels CSV or NAB's combined_windows.json."""
    from detectors.io import read_labels

    if labels.suffix.lower() == ".json":
        from detectors.nab_corpus import read_windows_file

        windows = read_windows_file(labels)
        if key is None:
            raise InputError(f"--nab-key: needed with {labels} (one of its {len(windows)} keys, e.g. folder/file.csv)")
        if key not in windows:
            raise InputError(f"--nab-key: {key!r} is not in {labels} ({len(windows)} keys)")
        return windows[key]
    lab = read_labels(labels)
    lab = lab[~lab["kind"].isin(["gap", "stale"])]
    return list(zip(lab["start"], lab["end"], strict=True))


def _evaluate_nab(scores: list[Path], labels: Path, key: str | None, json_out: bool) -> None:
    from rich.table import Table

    from detectors.io import read_scores
    from detectors.nab_eval import nab_report

    windows = _nab_windows(labels, key)
    results: dict[str, dict[str, Any]] = {}
    for path in scores:
        sc = read_scores(path)
        times = _ns(sc["time"])
        bounds = [(_ns([s])[0], _ns([e])[0]) for s, e in windows]
        results[str(path)] = nab_report(times, sc["score"].to_numpy(), sc["is_anomaly"].to_numpy(), bounds)
    if json_out:
        typer.echo(json.dumps(results, indent=1, default=float))
        return
    table = Table(title="NAB scores (0 = no alarm at all, 100 = perfect; probation rows not scored)")
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    rows = [
        ("alerted_standard", "NAB standard, as alerted"),
        ("alerted_reward_low_FP_rate", "NAB low-FP, as alerted"),
        ("alerted_reward_low_FN_rate", "NAB low-FN, as alerted"),
        ("optimised_standard", "NAB standard, best threshold (this file)"),
        ("optimised_reward_low_FP_rate", "NAB low-FP, best threshold"),
        ("optimised_reward_low_FN_rate", "NAB low-FN, best threshold"),
        ("overlap_precision", "overlap precision"),
        ("overlap_recall", "overlap recall"),
        ("overlap_f1", "overlap F1"),
        ("windows", "windows (after probation)"),
        ("found", "windows found"),
        ("alerts", "alerts"),
        ("probation_rows", "probation rows"),
    ]
    for k, label in rows:
        table.add_row(label, *[("-" if _nan(m[k]) else f"{m[k]:.3g}") for m in results.values()])
    console.print(table)


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _ns(times: Any) -> Any:
    """UTC epoch nanoseconds (int64) of timestamps."""
    import pandas as pd

    return pd.DatetimeIndex(times).as_unit("ns").asi8


def _plot(sc: Any, labels: Any, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 4))
    score = _plottable(sc["score"].to_numpy(dtype="float64"))
    ax.plot(sc["time"], score, lw=0.8, label="score")
    if "threshold" in sc.columns:
        ax.plot(
            sc["time"],
            _plottable(sc["threshold"].to_numpy(dtype="float64")),
            lw=0.8,
            color="red",
            ls="--",
            label="threshold",
        )
    hits = sc["is_anomaly"].to_numpy(dtype=bool)
    ax.scatter(sc["time"][hits], score[hits], s=10, color="red", zorder=3, label="alarm")
    for _, row in labels.iterrows():
        fault = row["kind"] in ("gap", "stale")
        ax.axvspan(row["start"], row["end"], color="grey" if fault else "orange", alpha=0.3)
    ax.set_xlim(sc["time"].min(), sc["time"].max())
    ax.set_ylabel("anomaly score")
    ax.set_title("score, threshold and labelled anomalies (orange; faults grey)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    console.print(f"wrote {out}")


def _plottable(values: Any) -> Any:
    """Scores as matplotlib can draw them: +-inf pinned to the top/bottom of the finite range, huge values capped.

    Scores may be infinite (``read_scores`` allows it); an axis reaching to inf, or to 1e308 where
    the margins overflow, makes matplotlib's tick locator fail.
    """
    import numpy as np

    out = np.clip(values, -1e300, 1e300)
    finite = out[np.isfinite(values)]
    top = float(finite.max()) if len(finite) else 1.0
    bottom = float(finite.min()) if len(finite) else 0.0
    out[np.isposinf(values)] = top
    out[np.isneginf(values)] = bottom
    return out


def _progress_callback(progress: Any, task: Any) -> Any:
    import keras

    class RichEpochs(keras.callbacks.Callback):  # type: ignore[misc]
        """Advance a rich progress bar once per epoch, showing the losses."""

        def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
            shown = " ".join(f"{k}={v:.4f}" for k, v in (logs or {}).items())
            progress.update(task, advance=1, description=f"epoch {epoch + 1} {shown}")

    return RichEpochs()


def train_command(
    detector: Annotated[str, typer.Option("--detector", "-d", help="Detector name.")],
    input: Annotated[list[Path] | None, typer.Option("--input", "-i", help="Candle/series CSV (repeatable).")] = None,
    exchange: Annotated[str | None, typer.Option(help="Train on stored candles of this exchange.")] = None,
    symbol: Annotated[list[str] | None, typer.Option(help="Stored symbol (repeatable).")] = None,
    timeframe: Annotated[str, typer.Option(help="Timeframe of stored candles.")] = "1h",
    scope: Annotated[str, typer.Option(help="'shared' (one model for all) or a symbol name.")] = "shared",
    models_dir: Annotated[
        Path | None, typer.Option(help="Where model versions are written (default: the config's paths.models_dir).")
    ] = None,
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Detector parameter KEY=VALUE.")] = None,
    config: ConfigOption = None,
    db: DbOption = None,
) -> None:
    """Train a detector on CSV files or stored candles and register it in the model store."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from detectors.io import read_series_csv
    from detectors.registry import create_detector, detector_from_config
    from detectors.store import save_model
    from storage.db import session_scope

    cfg = load_cli_config(config, db)
    factory = open_cli_database(cfg)
    frames: dict[str, Any] = {}
    for path in input or []:
        frames[path.stem] = read_series_csv(path)
    if symbol:
        if not exchange:
            raise InputError("--symbol needs --exchange")
        from storage.candles import load_candles

        with session_scope(factory) as session:
            for sym in symbol:
                frame = load_candles(session, exchange, sym.upper(), timeframe)
                if frame.empty:
                    raise InputError(f"no candles stored for {exchange}:{sym.upper()}:{timeframe}")
                frames[sym.upper()] = frame
    if not frames:
        raise InputError("nothing to train on: give --input FILE or --exchange X --symbol S")
    if detector in cfg.detectors:
        base = detector_from_config(detector, cfg.detectors[detector])
        det = create_detector(detector, **{**base.params, **_parse_params(param)})
    else:
        det = create_detector(detector, **_parse_params(param))
    epochs = int(det.params.get("epochs", 1))
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"training {detector}", total=epochs)
        callbacks = [_progress_callback(progress, task)] if "epochs" in det.params else []
        det.fit(frames, callbacks=callbacks)
        progress.update(task, completed=epochs)
    root = models_dir if models_dir is not None else cfg.paths.models_path
    with session_scope(factory) as session:
        record = save_model(session, det, scope=scope, root=root)
        console.print(f"saved {detector} scope={scope} version {record.version} at {root.absolute() / record.path}")


def list_command() -> None:
    """List the detector names (built-in and installed plug-ins)."""
    from detectors.registry import available_detectors

    for name in available_detectors():
        console.print(name)


def register(app: typer.Typer) -> None:
    app.command("score")(score_command)
    app.command("evaluate")(evaluate_command)
    app.command("train")(train_command)
    app.command("detectors")(list_command)
