"""Detector benchmarks: training time and batched scoring of 500 symbols.

    python bench/bench_detectors.py [--symbols 500] [--predict-loop 500]

1. Train ``lstm_forecaster`` (defaults: 24-step windows, 2x50 LSTM, up to 20 epochs with
   early stopping) on one year of hourly candles (the last 8,760 rows of BTC/USDT 1h from
   ``../shared/data/candles``). Aim: under 60 s.
2. For every detector: score the latest window of ``--symbols`` symbols with one
   ``score_batch`` call, against a loop of one ``score_batch`` call per symbol, and (for
   the neural ones, ``--predict-loop`` windows) a loop of ``model.predict`` on single
   windows: the per-window way this replaces. Aim: under 0.1 s per detector.
   The symbols are 500 differently offset slices of the real candle files.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from detectors.registry import create_detector  # noqa: E402
from storage.candle_csv import read_candle_csv  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "candles"
NAMES = ["zscore", "lstm_forecaster", "lstm_autoencoder", "gru_autoencoder", "attention_autoencoder", "cnn_autoencoder"]


def _timed(fn, repeat: int = 5) -> float:
    fn()  # warm-up (tracing)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=500)
    ap.add_argument("--predict-loop", type=int, default=500)
    ap.add_argument("--skip-train", action="store_true")
    args = ap.parse_args()

    btc = read_candle_csv(DATA / "BTC_USDT-1h.csv")
    year = btc.iloc[-8760:]
    if not args.skip_train:
        det = create_detector("lstm_forecaster", random_state=0)
        t0 = time.perf_counter()
        det.fit(year)
        took = time.perf_counter() - t0
        epochs = len(det.model_.history.history["loss"])
        print(f"train lstm_forecaster on {len(year)} hourly rows: {took:.1f} s ({epochs} epochs, early stopping)")

    sources = [read_candle_csv(p) for p in sorted(DATA.glob("*-1h.csv"))]
    rng = np.random.default_rng(0)
    print(f"\nscoring the latest window of {args.symbols} symbols (median of 5 runs)")
    print(f"{'detector':24} {'score_batch':>12} {'loop score_batch':>17} {'loop model.predict':>19}")
    for name in NAMES:
        det = create_detector(name, epochs=2) if name != "zscore" else create_detector(name)
        det.fit({"a": sources[0].iloc[-600:], "b": sources[1].iloc[-600:]})
        need = det.warmup + 1
        frames = {}
        for i in range(args.symbols):
            src = sources[i % len(sources)]
            end = int(rng.integers(need, len(src)))
            frames[f"S{i}"] = src.iloc[end - need : end]
        batch = _timed(lambda det=det, frames=frames: det.score_batch(frames), repeat=5)
        loop = _timed(lambda det=det, frames=frames: [det.score_batch({k: f}) for k, f in frames.items()], repeat=1)
        predict = ""
        if name != "zscore" and args.predict_loop:
            n = min(args.predict_loop, args.symbols)
            xs = [det._features(f, what="bench") for f in list(frames.values())[:n]]
            wins = [det._split(x[-det.window_length :][None].astype("float32"))[0] for x in xs]
            t0 = time.perf_counter()
            for w in wins:
                det.model_.predict(w, verbose=0)
            predict = f"{time.perf_counter() - t0:.2f} s ({n} calls)"
        print(f"{name:24} {batch * 1000:10.1f} ms {loop:15.2f} s {predict:>19}")


if __name__ == "__main__":
    main()
