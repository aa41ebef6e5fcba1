"""Time ``vigil score`` on one long raw series: fit on the first 15 % and score every row causally.

    python bench/bench_score_file.py [--rows 16000] [--detectors zscore,windowed_gaussian,...]

The series is a 5-minute ``value`` column (a daily cycle, noise, a level shift, spikes and a
DST-style repeated stretch of timestamps), written to a CSV and read back the way the command
reads it. Each detector runs with its defaults through ``detectors.online.score_online``, the
function behind ``vigil score``. Aim (issue 16): under 60 s per detector, training included.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detectors.io import read_series_csv  # noqa: E402
from detectors.online import score_online  # noqa: E402
from detectors.registry import create_detector  # noqa: E402


def make_series(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    value = 100 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(scale=3, size=rows)
    value[rows // 2 :] += 40
    value[rng.choice(rows, 10, replace=False)] += 80
    index = pd.date_range("2024-01-01", periods=rows, freq="5min")
    stamps = index.strftime("%Y-%m-%d %H:%M:%S").to_numpy().copy()
    stamps[3000:3012] = stamps[3000]  # one stamp repeated 12 times, as NAB's files show a DST change
    return pd.DataFrame({"timestamp": stamps, "value": value})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=16_000)
    ap.add_argument("--detectors", default="zscore,windowed_gaussian,relative_entropy,lstm_forecaster,lstm_autoencoder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "series.csv"
        make_series(args.rows).to_csv(path, index=False)
        print("| detector | rows | read (s) | fit + score (s) | alerts |")
        print("|---|---|---|---|---|")
        for name in args.detectors.split(","):
            t0 = time.perf_counter()
            frame = read_series_csv(path)
            t1 = time.perf_counter()
            result = score_online(lambda n=name: create_detector(n), frame, train_rows=int(len(frame) * 0.15))
            t2 = time.perf_counter()
            alarms = result.alarms.to_numpy()
            alerts = int((alarms & ~np.r_[False, alarms[:-1]]).sum())
            print(f"| `{name}` | {len(frame)} | {t1 - t0:.2f} | {t2 - t1:.1f} | {alerts} |", flush=True)


if __name__ == "__main__":
    main()
