"""Alert rate of the default thresholds on the real candles in ``../shared/data/candles``.

    python bench/alert_rate_real.py [--detectors zscore,lstm_forecaster,lstm_autoencoder]
        [--split tuning|heldout] [--timeframes 1h,5m] [--per-file]

Per timeframe (1h, 5m) one shared model per detector is fitted on the first 20 % of
every file (at most the last ``--max-rows`` rows of each file are used), then each file
is scored in full and alarmed by the detector's default threshold. Reported: alerts per
symbol-week on the part after training, where an alert is a run of consecutive alarmed
bars (what a user would be messaged about), plus alarmed bars per 1,000. A file whose training part
is shorter than a detector's warm-up (zscore looks back a day of 5-minute bars) is left out of that
detector's fit and scored from the first row the detector can score.

``--split`` keeps only the files of one part of the fixed split (``detectors/candle_split.py``):
choices are made on ``tuning``; ``heldout`` is for the figure that is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from detectors.candle_split import candle_split  # noqa: E402
from detectors.registry import create_detector  # noqa: E402
from storage.candle_csv import read_candle_csv  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--detectors", default="zscore,lstm_forecaster,lstm_autoencoder")
    ap.add_argument("--max-rows", type=int, default=8760)
    ap.add_argument("--train-fraction", type=float, default=0.2)
    ap.add_argument("--params", default="", help='JSON {"name": {param: value}} overrides (e.g. a threshold)')
    ap.add_argument("--split", choices=["tuning", "heldout"], default=None, help="one part of the fixed split")
    ap.add_argument("--timeframes", default="1h,5m")
    ap.add_argument("--per-file", action="store_true", help="also print alerts per file")
    args = ap.parse_args()
    params = json.loads(args.params) if args.params else {}
    print("| detector | timeframe | symbols | test weeks | alerts | alerts per symbol-week | alarmed bars per 1000 |")
    print("|---|---|---|---|---|---|---|")
    split = candle_split(p.name for p in DATA.glob("*.csv"))
    per_file: list[str] = []
    for tf in args.timeframes.split(","):
        files = sorted(p for p in DATA.glob(f"*-{tf}.csv") if args.split is None or split[p.name] == args.split)
        frames = {p.stem: read_candle_csv(p).iloc[-args.max_rows :] for p in files}
        train = {s: f.iloc[: int(len(f) * args.train_fraction)] for s, f in frames.items()}
        for name in args.detectors.split(","):
            det = create_detector(name, **params.get(name, {}))
            det._ensure_spec(next(iter(frames.values())))  # the warm-up can depend on the bar length (zscore)
            need = det.warmup + 2
            usable = {s: t for s, t in train.items() if len(t) >= need}
            for sym in sorted(set(train) - set(usable)):  # fitted on the others, scored from where it can be
                print(f"note: {sym}: {len(train[sym])} training rows, {name} needs {need}", file=sys.stderr)
            det.fit(usable)
            alerts = bars = rows = 0
            weeks = 0.0
            for sym, frame in frames.items():
                if len(frame) <= max(len(train[sym]), det.warmup) + 1:
                    continue
                # the test part (or, for a file too short to warm up on, the rows after the warm-up)
                test = frame.iloc[max(0, len(train[sym]) - det.warmup) :]
                alarms = det.is_anomaly(det.score(test)).to_numpy()[det.warmup :]
                runs = int(np.sum(alarms[1:] & ~alarms[:-1]) + alarms[0])
                alerts += runs
                bars += int(alarms.sum())
                rows += len(alarms)
                file_weeks = (test.index[-1] - test.index[det.warmup]).total_seconds() / (7 * 86400)
                weeks += file_weeks
                per_file.append(f"| `{name}` | {sym} | {runs} | {file_weeks:.1f} | {runs / file_weeks:.2f} |")
            print(
                f"| `{name}` | {tf} | {len(frames)} | {weeks:.0f} | {alerts} | {alerts / weeks:.2f} | "
                f"{1000 * bars / rows:.2f} |",
                flush=True,
            )
    if args.per_file:
        print("\n| detector | file | alerts | test weeks | alerts per week |\n|---|---|---|---|---|")
        print("\n".join(per_file))


if __name__ == "__main__":
    main()
