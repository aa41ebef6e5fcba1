"""Score the latest bar of 500 symbols with ``PumpDumpDetector.score_batch`` vs one call per symbol.

Usage::

    python bench/bench_pump_batch.py [--symbols 500] [--bars 120] [--repeats 3]

A small model (default hyper-parameters, lookback 32) is trained for one epoch on a few
seeded frames (training time is not measured), then every symbol's latest window is scored:
once through ``score_batch(frames, last_n=1)`` (all windows in one model call) and once with
``score_batch({symbol: frame})`` per symbol. Best of ``--repeats`` each; target < 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from detectors.pump.detector import PumpDumpDetector  # noqa: E402


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    index = pd.date_range("2024-01-01", periods=n, freq="1min", tz="UTC")
    return pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.001,
            "low": np.minimum(open_, close) * 0.999,
            "close": close,
            "volume": rng.lognormal(3, 0.3, n),
            "social_volume": rng.poisson(5, n).astype(float),
        },
        index=index,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    train = {f"T{i}": frame(400, i).assign(is_pump=0) for i in range(4)}
    for f in train.values():
        f.iloc[200:203, f.columns.get_loc("is_pump")] = 1
        f.iloc[200:203, f.columns.get_loc("volume")] *= 20
    det = PumpDumpDetector(epochs=1).fit(train)
    frames = {f"S{i}/USDT": frame(args.bars, 1000 + i) for i in range(args.symbols)}
    det.score_batch(dict(list(frames.items())[:2]))  # warm the model's predict function

    batch, single = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        out = det.score_batch(frames, last_n=1)
        batch.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for symbol, f in frames.items():
            det.score_batch({symbol: f}, last_n=1)
        single.append(time.perf_counter() - t0)
    assert len(out) == args.symbols
    b, s = min(batch), min(single)
    print(f"{args.symbols} symbols x {args.bars} bars, lookback {det.lookback}, best of {args.repeats}")
    print(f"score_batch (one model call):   {b:.3f} s  ({b / args.symbols * 1e3:.2f} ms/symbol)")
    print(f"one call per symbol (baseline): {s:.3f} s  ({s / b:.1f}x slower)")


if __name__ == "__main__":
    main()
