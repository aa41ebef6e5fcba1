"""Do on-chain inputs let a candle detector warn *before* the price moves? Scored on planted leads.

    python bench/eval_onchain.py [--seeds 100-109] [--detector zscore]

For each seed: a synthetic market (10 symbols, 120 days of 1h bars, default anomalies)
and its daily on-chain series with planted leads (``feeds/synthetic_onchain.py``),
aligned to the bars without look-ahead (``feeds/onchain/align.py``: a day's value is used
from the first bar after the day closed). The detector is fitted on the first 30 % of
every symbol (the on-chain inputs are judged against 30 days of their own history), once
with the on-chain columns as optional inputs and once without; everything after is scored.

Reported per variant: planted leads warned about (an alarm between the moment the lead's
day value became known and the start of the price event it leads), the median warning
time before the price event, price events alarmed at all (within the event or up to 2
bars after its start), and alarm runs per symbol-week outside every event window and
lead span (false alarms).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detectors.registry import create_detector  # noqa: E402
from detectors.venue_metrics import alarm_runs  # noqa: E402
from feeds.onchain import metric_per_bar, onchain_column  # noqa: E402
from feeds.synthetic import generate_market  # noqa: E402
from feeds.synthetic_onchain import ONCHAIN_METRICS, generate_onchain  # noqa: E402

DAY_MS = 86_400_000
INPUTS = [onchain_column(m) for m in ONCHAIN_METRICS]
TRAIN = 0.3


def _seeds(text: str) -> list[int]:
    lo, _, hi = text.partition("-")
    return list(range(int(lo), int(hi or lo) + 1))


def _frames(seed: int) -> tuple[dict[str, pd.DataFrame], pd.DataFrame, pd.DataFrame]:
    market = generate_market(10, days=120, timeframe="1h", seed=seed, faults=False)
    chain = generate_onchain(market, seed=seed)
    frames = {}
    for symbol, frame in market.candles.items():
        daily = chain.values[symbol.split("/")[0]]
        extra = {onchain_column(m): metric_per_bar(daily[m], frame.index, period_ms=DAY_MS) for m in ONCHAIN_METRICS}
        frames[symbol] = frame.assign(**{k: v.to_numpy() for k, v in extra.items()})
    return frames, market.labels, chain.labels


def evaluate(detector: str, seeds: list[int], with_inputs: bool) -> dict[str, float]:
    warned, leads, lead_hours, events, alarmed, false_runs, weeks = 0, 0, [], 0, 0, 0, 0.0
    for seed in seeds:
        frames, labels, chain = _frames(seed)
        params = {"inputs": INPUTS} if with_inputs else {}
        det = create_detector(detector, **params)
        det.fit({s: f.iloc[: int(TRAIN * len(f))] for s, f in frames.items()})
        for symbol, frame in frames.items():
            start = int(TRAIN * len(frame))
            alarms = det.is_anomaly(det.score(frame)).to_numpy().copy()
            alarms[:start] = False
            index = frame.index
            covered = np.zeros(len(index), dtype=bool)
            for ev in labels[labels["symbol"] == symbol].itertuples():
                span = (index >= ev.start) & (index <= ev.end + pd.Timedelta(hours=2))
                covered |= span
                if ev.start >= index[start] and ev.kind not in ("gap", "stale"):
                    events += 1
                    alarmed += int(alarms[span].any())
            for lead in chain[chain["asset"] == symbol.split("/")[0]].itertuples():
                known = lead.end + pd.Timedelta(days=1)
                window = (index >= known) & (index < lead.leads)
                covered |= window
                if lead.leads < index[start]:
                    continue
                leads += 1
                hits = np.flatnonzero(alarms & window)
                if len(hits):
                    warned += 1
                    lead_hours.append((lead.leads - index[hits[0]]).total_seconds() / 3600)
            s, e = alarm_runs(alarms & ~covered)
            false_runs += len(s)
            weeks += (index[-1] - index[start]).total_seconds() / (7 * 86_400)
    return {
        "leads": leads,
        "warned": warned,
        "median_warning_h": float(np.median(lead_hours)) if lead_hours else float("nan"),
        "events": events,
        "events_alarmed": alarmed,
        "false_runs_per_symbol_week": false_runs / weeks if weeks else float("nan"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="100-109")
    ap.add_argument("--detector", default="zscore")
    args = ap.parse_args()
    seeds = _seeds(args.seeds)
    print(f"detector {args.detector}, seeds {args.seeds}")
    print(
        "| inputs | leads warned | median warning (h before the price event) | price events alarmed "
        "| false runs per symbol-week |"
    )
    print("|---|---|---|---|---|")
    for with_inputs in (False, True):
        r = evaluate(args.detector, seeds, with_inputs)
        label = "candles + on-chain" if with_inputs else "candles only"
        print(
            f"| {label} | {r['warned']}/{r['leads']} | {r['median_warning_h']:.1f} | "
            f"{r['events_alarmed']}/{r['events']} | {r['false_runs_per_symbol_week']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
