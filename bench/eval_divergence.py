"""The ``divergence`` detector against its targets (issue 20), on tuning or held-out data.

    python bench/eval_divergence.py synthetic --split heldout      # planted dislocations, unseen seeds
    python bench/eval_divergence.py real --split heldout           # real 1h candles replayed as 3 venues
    python bench/eval_divergence.py both --split tuning --param window=96 --param threshold=12

Splits, fixed before any run (never choose anything on the held-out half):

* synthetic: tuning seeds 0-4, held-out seeds 100-119; 10 assets x 60 days of 1h bars,
  venues binance, okx, kraken (kraken quotes in USD), default dislocation rate;
* real: the shared ``*-1h.csv`` candles in sorted order, even positions tuning
  (ADA, BTC, ETH, XRP), odd positions held out (BNB, DOT, SOL); each file replayed as three
  venues (replay seed 7) that differ only by bid-ask bounce, timing offsets and a USD basis
  on one venue; no dislocation planted, so every alarm run is a false alarm.

Alarms use the detector's own threshold through the one alarm rule (``detectors.alarms``); a
non-static threshold policy (``--param threshold='{"policy": "rolling_quantile", ...}'``) is
fitted on the first 20 % of each series only.
Counted per venue alarm run (see ``detectors/venue_metrics.py``): event precision, recall,
F1, the share of true alarm runs on the right venue, and false runs per group-week.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detectors.alarms import detector_alarms  # noqa: E402
from detectors.groups import attach_peers  # noqa: E402
from detectors.registry import create_detector  # noqa: E402
from detectors.venue_metrics import group_alarm_metrics, pool_group_metrics  # noqa: E402
from feeds.synthetic_venues import generate_venue_market, replay_as_venues  # noqa: E402
from storage.candle_csv import read_candle_csv  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
SYNTHETIC_SEEDS = {"tuning": list(range(5)), "heldout": list(range(100, 120))}
VENUES = ("binance", "okx", "kraken")


def real_split(split: str) -> list[Path]:
    files = sorted(DATA.glob("*-1h.csv"))
    return files[0::2] if split == "tuning" else files[1::2]


def _parse_params(items: list[str]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    if "threshold" in params and not isinstance(params["threshold"], dict):
        params["threshold"] = {"policy": "static", "value": float(params["threshold"])}  # type: ignore[arg-type]
    return params


def _head(frames: dict[str, pd.DataFrame], fraction: float = 0.2) -> dict[str, pd.DataFrame]:
    """The first ``fraction`` of every frame: what a non-static threshold is fitted on (no planted event there)."""
    return {k: f.iloc[: max(int(len(f) * fraction), 1)] for k, f in frames.items()}


def _alarms(det, frames: dict[str, pd.DataFrame]) -> dict[str, pd.Series]:  # noqa: ANN001
    out = {}
    for key, frame in frames.items():
        scores = det.score(frame)
        fired = detector_alarms(det, scores)
        out[key] = pd.Series(scores.index.isin(fired.index), index=scores.index)
    return out


def run_synthetic(
    params: dict[str, object], split: str, assets: int, days: float, noise: dict[str, object]
) -> dict[str, float]:
    det = create_detector("divergence", **params)
    parts = []
    for seed in SYNTHETIC_SEEDS[split]:
        market = generate_venue_market(assets, VENUES, days=days, timeframe="1h", seed=seed, **noise)
        labels = market.labels.assign(venue_key=market.labels["venue"] + ":" + market.labels["symbol"])
        for group, members in market.groups.items():
            frames = attach_peers({m: market.candles[m] for m in members})
            det.fit(_head(frames))
            alarms = _alarms(det, frames)
            first = next(iter(frames.values())).index[det.warmup]
            parts.append(group_alarm_metrics(alarms, labels[labels["group"] == group], scored_from=first))
    return pool_group_metrics(parts)


def run_real(params: dict[str, object], split: str, noise: dict[str, object]) -> dict[str, float]:
    det = create_detector("divergence", **params)
    parts = []
    for path in real_split(split):
        frame = read_candle_csv(path)
        venues = replay_as_venues(frame, VENUES, seed=7, timeframe="1h", usd_venues=("kraken",), **noise)
        frames = attach_peers({f"{v}:{path.stem}": f for v, f in venues.items()})
        det.fit(_head(frames))
        alarms = _alarms(det, frames)
        first = frame.index[det.warmup]
        empty = pd.DataFrame({"venue_key": [], "start": [], "end": []})
        part = group_alarm_metrics(alarms, empty, scored_from=first)
        part["file"] = path.name
        parts.append(part)
    out = pool_group_metrics(parts)
    out["per_file"] = {p["file"]: p["false_runs"] / p["weeks"] for p in parts}  # type: ignore[assignment]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["synthetic", "real", "both"])
    ap.add_argument("--split", choices=["tuning", "heldout"], required=True)
    ap.add_argument("--param", action="append", default=[], help="detector hyper-parameter k=v (JSON value)")
    ap.add_argument("--assets", type=int, default=10)
    ap.add_argument("--days", type=float, default=60)
    ap.add_argument("--max-offset-s", type=float, default=5.0, help="venue clock skew bound (s)")
    ap.add_argument("--stale-s", default="2,30", help="range of the venues' mean last-trade lag (s), 'lo,hi'")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    params = _parse_params(args.param)
    lo, hi = (float(x) for x in args.stale_s.split(","))
    noise: dict[str, object] = {"max_offset_s": args.max_offset_s, "stale_s": (lo, hi)}
    results: dict[str, object] = {"split": args.split, "params": params}
    t0 = time.perf_counter()
    if args.what in ("synthetic", "both"):
        results["synthetic"] = run_synthetic(params, args.split, args.assets, args.days, noise)
    if args.what in ("real", "both"):
        if not DATA.is_dir():
            raise SystemExit(f"shared candles not found at {DATA}")
        results["real"] = run_real(params, args.split, noise)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json:
        print(json.dumps(results, indent=1, default=float))
        return
    print(f"split={args.split} params={params} noise={noise} ({results['seconds']} s)")
    if "synthetic" in results:
        s = results["synthetic"]
        assert isinstance(s, dict)
        print(
            f"synthetic: labels {s['labels']:.0f} found {s['found']:.0f} runs {s['runs']:.0f} "
            f"true {s['true_runs']:.0f} | precision {s['precision']:.3f} recall {s['recall']:.3f} "
            f"F1 {s['f1']:.3f} | venue named correctly {s['venue_accuracy']:.3f} | "
            f"false runs/group-week {s['false_runs_per_group_week']:.3f}"
        )
    if "real" in results:
        r = results["real"]
        assert isinstance(r, dict)
        per_file = ", ".join(f"{k}: {v:.3f}" for k, v in r["per_file"].items())
        print(
            f"real: {r['group_weeks']:.0f} group-weeks, {r['runs']:.0f} alarm runs -> "
            f"{r['false_runs_per_group_week']:.3f} per group-week ({per_file})"
        )
    _ = np  # keep numpy imported for interactive use


if __name__ == "__main__":
    main()
