"""The shipped hourly pump model at its alert budget: false alerts on real candles, recall on planted pumps.

    python bench/eval_candle_budget.py [--seeds 5000-5009] [--budgets 0.05,0.1,0.2,0.5]

* Real candles (``../shared/data/candles/*-1h.csv``, treated as pump-free background: no pumps are
  labelled there): alert episodes per symbol-week on the *second half* of every file, which no
  choice used (the threshold comes from the first half, ``bot/pretrain.py``).
* Synthetic hourly markets of ``--seeds`` (``generate_market(10, days=30, timeframe="1h")``, the
  default anomaly mix, as ``vigil demo`` makes them; never used for training or choosing): a pump
  is found when an alarm falls between its start and its price peak, an alarm episode touching no
  pump is a false alarm; scored after the first 25 % of each series, like the demo. Also the
  bar-wise precision the demo reports (alarmed bars inside a pump's window, +2 bars).

Seeds: training 101-102, development 201-210 (the recipe was chosen there), reported 5000-5009.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bot.pretrain import real_candle_background  # noqa: E402
from detectors.pump.budget import WEEK_MS, BudgetCurve, episodes_at  # noqa: E402
from detectors.pump.detector import PumpDumpDetector  # noqa: E402
from detectors.pump.diagnostics import false_alarm_kinds, pump_spans  # noqa: E402
from detectors.pump.metrics import event_detection  # noqa: E402
from feeds.synthetic import generate_market  # noqa: E402


def _seeds(text: str) -> list[int]:
    a, _, b = text.partition("-")
    return list(range(int(a), int(b) + 1)) if b else [int(x) for x in text.split(",")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="5000-5009")
    ap.add_argument("--budgets", default="0.05,0.1,0.2,0.5")
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()
    det = PumpDumpDetector.load(args.model) if args.model else PumpDumpDetector.pretrained("candles", "1h")
    curve = BudgetCurve.from_json(det.extra_["budget"]["curve"])
    budgets = [float(b) for b in args.budgets.split(",")]
    real = real_candle_background("1h")
    real_scores = {s: det.score(f).to_numpy() for s, f in real.items()}
    markets = [generate_market(10, days=30, timeframe="1h", seed=s) for s in _seeds(args.seeds)]
    scores = [det.score_batch(m.candles, last_n=10**6) for m in markets]
    print("| budget | threshold | real, calibration half | real, held-out half | pumps | found by the peak | "
          "false episodes | recall | episode precision | bar precision |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for budget in budgets:
        thr = curve.threshold_for(budget)
        held_alerts = held_weeks = 0.0
        for s, f in real.items():
            half = len(f) // 2
            held_alerts += int(episodes_at(real_scores[s][half:], np.array([thr]))[0])
            held_weeks += (f.index[-1] - f.index[half]).total_seconds() * 1000 / WEEK_MS
        tot = dict(tp=0, late=0, fn=0, fp=0, episodes=0)
        kinds: Counter[str] = Counter()
        inside = alarmed = 0
        for m, sc in zip(markets, scores, strict=True):
            for s, f in m.candles.items():
                al = sc[s].to_numpy() > thr
                cut = int(len(al) * 0.25)
                al[:cut] = False
                spans = [sp for sp in pump_spans(f, m.labels, s) if sp[0] >= cut]
                for k, v in event_detection(al, spans).items():
                    tot[k] += v
                labels = m.labels[m.labels["symbol"] == s]
                kinds.update(false_alarm_kinds(al, f.index, labels, spans, tail=pd.Timedelta(hours=2)))
                cov = np.zeros(len(al), dtype=bool)
                for a, _pk, e in spans:
                    cov[a : e + 3] = True
                inside += int((al & cov).sum())
                alarmed += int(al.sum())
        pumps = tot["tp"] + tot["fn"]
        precision = (tot["episodes"] - tot["fp"]) / tot["episodes"] if tot["episodes"] else float("nan")
        print(
            f"| {budget} | {thr:.4f} | {curve.rate_at(thr):.3f} | {held_alerts / held_weeks:.3f} | {pumps} | "
            f"{tot['tp']} | {tot['fp']} ({dict(kinds)}) | {tot['tp'] / pumps:.3f} | {precision:.3f} | "
            f"{inside / max(alarmed, 1):.3f} |"
        )
    print(f"real candles: {curve.weeks:.0f} symbol-weeks calibration, {held_weeks:.0f} held out; seeds {args.seeds}")


if __name__ == "__main__":
    main()
