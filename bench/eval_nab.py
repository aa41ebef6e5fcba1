"""Detectors on a folder of NAB-layout files: NAB scores (as alerted and optimised) and overlap F1.

    python bench/eval_nab.py ../shared/data/nab --split tuning --detectors zscore,windowed_gaussian
    python bench/eval_nab.py ../shared/data/nab --split heldout --per-file      # the reported run

``DIR`` holds ``data/<folder>/<file>.csv`` and ``labels/combined_windows.json`` (NAB's layout).
Every file is scored the way ``vigil score`` does it: the detector is fitted on the
probationary rows (NAB's first 15 %), every row is scored causally (with the detector's
online refits, if configured), and its default threshold policy raises the alarms.
Printed per detector: NAB standard / reward_low_FP / reward_low_FN scores as alerted (one
detection per run of flagged rows) and with NAB's corpus-optimised threshold on the raw score,
and the overlap precision/recall/F1 (alarms within 48 rows merged). ``--split`` picks a half of
the fixed split in ``detectors/nab_split.py``; tune on ``tuning`` only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detectors.nab_corpus import load_nab_file, read_windows, select_keys  # noqa: E402
from detectors.nab_eval import FileRun, file_rows, summarize_runs  # noqa: E402
from detectors.online import apply_policy, score_online  # noqa: E402
from detectors.registry import create_detector, get_detector_class  # noqa: E402

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
DEFAULT = "zscore,lstm_forecaster,lstm_autoencoder"


_COMMON = ("base.py", "features.py", "keras_base.py", "networks.py", "online.py")


def _code_version(name: str) -> str:
    """A digest of the code behind a detector's raw scores, so cached scores never outlive a change to it."""
    import inspect

    root = Path(__file__).resolve().parents[1] / "detectors"
    own = Path(inspect.getfile(get_detector_class(name)))
    digest = hashlib.sha256()
    for path in sorted({*(root / f for f in _COMMON), own}):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _cache_path(cache: Path | None, name: str, params: dict[str, Any], key: str) -> Path | None:
    if cache is None:
        return None
    tag = hashlib.sha256(json.dumps([name, params, key, _code_version(name)], sort_keys=True).encode()).hexdigest()[:16]
    return cache / f"{name}-{key.replace('/', '__')}-{tag}.npz"


def run_file(name: str, params: dict[str, Any], nab: Any, cache: Path | None) -> tuple[FileRun, float]:
    """Scores and alarms of one detector on one file, and the seconds taken.

    The raw scores (and the calibration scores the threshold is fitted on) are cached per
    detector parameters without the threshold, so trying thresholds re-reads them.
    """
    klass = get_detector_class(name)
    threshold = params.get("threshold") or dict(klass.default_threshold_columns or klass.default_threshold)
    raw_params = {k: v for k, v in params.items() if k != "threshold"}
    path = _cache_path(cache, name, raw_params, nab.key)
    if path is not None and path.is_file():
        data = np.load(path)
        scores, cal, seconds = data["scores"], data["calibration"], float(data["seconds"])
    else:
        t0 = time.perf_counter()
        online = {k: raw_params[k] for k in ("refit_every", "refit_window") if k in raw_params}
        det_params = {k: v for k, v in raw_params.items() if k not in online}
        result = score_online(
            lambda: create_detector(name, **det_params), nab.frame, train_rows=nab.layout.probation, **online
        )
        seconds = time.perf_counter() - t0
        scores, cal = result.scores.to_numpy(dtype="float64"), result.calibration
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, scores=scores, calibration=cal, seconds=seconds)
    alarms, _ = apply_policy(threshold, pd.Series(scores, index=nab.frame.index), cal)
    return FileRun(scores, alarms.to_numpy(dtype=bool)), seconds


def _progress(total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


COLUMNS = [
    ("alerted_standard", "NAB std (alerted)"),
    ("alerted_reward_low_FP_rate", "low-FP (alerted)"),
    ("alerted_reward_low_FN_rate", "low-FN (alerted)"),
    ("optimised_standard", "NAB std (optimised)"),
    ("optimised_reward_low_FP_rate", "low-FP (opt.)"),
    ("optimised_reward_low_FN_rate", "low-FN (opt.)"),
    ("overlap_precision", "overlap P"),
    ("overlap_recall", "overlap R"),
    ("overlap_f1", "overlap F1"),
    ("alerts", "alerts"),
    ("seconds", "time (s)"),
]


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| detector | " + " | ".join(c for _, c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, m in results.items():
        cells = []
        for k, _ in COLUMNS:
            v = m[k]
            cells.append(
                f"{v:.3f}" if k.startswith("overlap") else f"{v:.0f}" if k in ("alerts", "seconds") else f"{v:.1f}"
            )
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def file_table(rows_by_detector: dict[str, list[dict[str, Any]]]) -> str:
    names = list(rows_by_detector)
    head = "| file | windows | " + " | ".join(f"{n} std / found / alerts" for n in names) + " |"
    lines = [head, "|---" * (len(names) + 2) + "|"]
    files = [r["file"] for r in next(iter(rows_by_detector.values()))]
    for i, f in enumerate(files):
        cells = []
        for n in names:
            r = rows_by_detector[n][i]
            std = "-" if np.isnan(r["standard"]) else f"{r['standard']:.0f}"
            cells.append(f"{std} / {r['found']} / {r['alerts']}")
        lines.append(f"| {f} | {rows_by_detector[names[0]][i]['windows']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help="NAB-layout folder")
    ap.add_argument("--detectors", default=DEFAULT)
    ap.add_argument("--params", default="", help='JSON {"name": {param: value}}; refit_every/refit_window too')
    ap.add_argument("--split", default="all", help="all | tuning | heldout (detectors/nab_split.py)")
    ap.add_argument("--only", default="", help="comma-separated substrings of file keys to keep")
    ap.add_argument("--per-file", action="store_true", help="also print the per-file table")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep scores in (re-runs read them)")
    ap.add_argument("--json", type=Path, help="also write the metrics here")
    args = ap.parse_args()
    if not (args.dir / "data").is_dir():
        raise SystemExit(f"{args.dir}: not a NAB-layout folder (no data/ inside)")
    params = json.loads(args.params) if args.params else {}
    names = args.detectors.split(",")
    keys = select_keys(args.dir, args.split, [s for s in args.only.split(",") if s] or None)
    windows = read_windows(args.dir)
    files = {k: load_nab_file(args.dir, k, windows) for k in keys}
    layouts = {k: f.layout for k, f in files.items()}
    results: dict[str, dict[str, Any]] = {}
    per_file: dict[str, list[dict[str, Any]]] = {}
    with _progress(len(names) * len(keys)) as progress:
        task = progress.add_task("scoring", total=len(names) * len(keys))
        for name in names:
            runs, seconds = {}, 0.0
            for k in keys:
                progress.update(task, description=f"{name} {k}")
                runs[k], took = run_file(name, params.get(name, {}), files[k], args.cache)
                seconds += took
                progress.advance(task)
            results[name] = {**summarize_runs(runs, layouts), "seconds": seconds}
            per_file[name] = file_rows(runs, layouts)
    windows_total = results[names[0]]["windows"]
    print(f"\n{len(keys)} files ({args.split}), {windows_total} scored windows\n")
    print(table(results))
    if args.per_file:
        print()
        print(file_table(per_file))
    if args.json:
        args.json.write_text(json.dumps({"summary": results, "per_file": per_file}, indent=1, default=float))


if __name__ == "__main__":
    main()
