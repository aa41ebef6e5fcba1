"""Chunk-grain pump detection on synthetic trade tapes of unseen seeds, at the alert-budget threshold.

    python bench/eval_stream_pumps.py [--model DIR] [--seeds 600-609] [--symbols 40] [--minutes 240]
                                      [--budget 0.1] [--background-seeds 450-453]

Scores every chunk of every tape causally (``trades_to_chunks`` + ``score_table``, which the
live stream reproduces exactly: ``tests/detectors/pump/test_live_chunks.py``), turns alarms into
alerts the way the stream job does (an alarm after ``episode_gap`` quiet chunks starts an alert;
the first ``window`` chunks of a tape are warm-up), and reports, per seed and pooled:

* event recall (a pump found by an alert on a chunk overlapping its start .. end), precision
  (alerts touching a pump over all alerts; hard negatives - news bursts, whale trades - are in
  the tapes), and the share of found pumps alerted on a chunk that closed by the price peak;
* on pump-free tapes (``--background-seeds``) the alert rate per symbol-week (the budget check
  on data never used for the calibration).

Default model: the shipped ``detectors/pump/pretrained/chunks-15s``. Seeds: the model trains on
301-303 and is calibrated on 401-406 (``bot/pretrain.py``); development looked at 500-509;
600-609 and 450-453 are reported here and were used for nothing else.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bot.pretrain import score_tape  # noqa: E402
from bot.runtime.demo_streams import match_stream_events  # noqa: E402
from detectors.pump.budget import WEEK_MS, run_starts  # noqa: E402
from detectors.pump.detector import PumpDumpDetector  # noqa: E402
from detectors.pump.pretrained import pretrained_dir  # noqa: E402
from feeds.synthetic_trades import generate_trades  # noqa: E402


def _seeds(text: str) -> list[int]:
    if "-" in text:
        a, b = text.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in text.split(",")]


def alerts_of(table: pd.DataFrame, threshold: float, window: int, gap: int) -> pd.DataFrame:
    """The chunks that would have raised an alert: the first alarm of each episode, after the warm-up."""
    out = []
    for symbol, rows in table.groupby("symbol", sort=False):
        scores = rows["score"].to_numpy().copy()
        scores[: window + 1] = np.nan
        starts = run_starts(np.nan_to_num(scores, nan=-1.0) > threshold, gap)
        hit = rows[starts]
        out.append(
            pd.DataFrame({"symbol": symbol, "bar_ts": hit["start_ms"].to_numpy(), "score": hit["score"].to_numpy()})
        )
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=["symbol", "bar_ts", "score"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--seeds", default="600-609")
    ap.add_argument("--background-seeds", default="450-453")
    ap.add_argument("--symbols", type=int, default=40)
    ap.add_argument("--minutes", type=float, default=240)
    ap.add_argument("--pumps-per-hour", type=float, default=0.5)
    ap.add_argument("--budget", type=float, default=None, help="alerts per symbol-week (default: the model's)")
    ap.add_argument("--gap", type=int, default=8, help="quiet chunks that end an episode (streams.episode_gap_chunks)")
    args = ap.parse_args()
    det = PumpDumpDetector.load(args.model or pretrained_dir("chunks"))
    if args.budget is not None:
        det.apply_budget(args.budget)
    stream = det.extra_.get("stream", {})
    chunk_ms, window = int(stream.get("chunk_ms", 15_000)), int(stream.get("window", 20))
    chunk_s = chunk_ms // 1000
    thr = float(det.threshold_)
    print(
        f"model {args.model or 'shipped'}: threshold {thr:.5f} "
        f"(budget {det.extra_.get('alert_budget')}), {chunk_s} s chunks"
    )
    rows = []
    t0 = time.perf_counter()
    for seed in _seeds(args.seeds):
        tape = generate_trades(args.symbols, minutes=args.minutes, seed=seed, pumps_per_hour=args.pumps_per_hour)
        table = score_tape(det, tape, chunk_s, window)
        events = alerts_of(table, thr, window, args.gap)
        events["close_ms"] = events["bar_ts"] + chunk_ms
        scored_from = tape.start_ms + (window + 1) * chunk_ms
        pumps = match_stream_events(events, tape.labels, chunk_ms, scored_from)
        first_chunk = (pumps["alert_chunk_ms"] == pumps["first_pump_chunk_close_ms"] - chunk_ms).sum()
        rows.append(
            {
                "seed": seed,
                "pumps": len(pumps),
                "found": int(pumps["found"].sum()),
                "before_peak": int(pumps["before_peak"].sum()),
                "on_first_pump_chunk": int(first_chunk),
                "alerts": len(events),
                "false": int(events["false_alarm"].sum()),
            }
        )
        print(rows[-1], flush=True)
    res = pd.DataFrame(rows)
    tot = res.sum()
    recall = tot["found"] / tot["pumps"]
    precision = (tot["alerts"] - tot["false"]) / tot["alerts"] if tot["alerts"] else float("nan")
    print(
        f"pooled over seeds {args.seeds}: {tot['pumps']} pumps, recall {recall:.3f}, precision {precision:.3f}, "
        f"before peak {tot['before_peak']}/{tot['found']} ({tot['before_peak'] / max(tot['found'], 1):.3f}), "
        f"alert on the first pump chunk {tot['on_first_pump_chunk']}/{tot['found']}"
    )
    weeks = alerts = 0.0
    for seed in _seeds(args.background_seeds):
        tape = generate_trades(args.symbols, minutes=args.minutes, seed=seed, pumps_per_hour=0.0)
        table = score_tape(det, tape, chunk_s, window)
        alerts += len(alerts_of(table, thr, window, args.gap))
        weeks += len(table) * chunk_ms / WEEK_MS
    print(
        f"pump-free tapes {args.background_seeds}: {alerts:.0f} alerts in {weeks:.2f} symbol-weeks "
        f"= {alerts / weeks:.3f} per symbol-week"
    )
    print(f"took {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
