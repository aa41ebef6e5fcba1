"""Scoring the latest window of 500 symbols: ONNX Runtime against Keras, per neural detector.

    python bench/bench_serving.py --models DIR [--symbols 500] [--predict-loop 100] [--repeat 20]

``DIR`` holds models saved by ``bench/bench_cycle.py --models DIR`` (Keras + ONNX). The
frames are ``bench_cycle``'s synthetic market (500-bar windows). For each neural detector:

* the model call alone on the latest window of every symbol (one batch of ``--symbols``
  windows): ONNX Runtime (the saved ``model.onnx``, one intra-op thread) vs the Keras model
  in a compiled ``tf.function`` vs one ``model.predict`` per symbol (``--predict-loop``
  calls timed, scaled to all symbols), medians of ``--repeat`` runs;
* the whole ``score_batch(frames, last_n=1)`` (features, model, smoothing, the Series
  handed back), served by ONNX Runtime: the first call, and a steady-state call after
  one new bar (raw window scores of earlier bars reused, as in the live loop).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import bench_cycle as bc  # noqa: E402

NEURAL = ("lstm_forecaster", "lstm_autoencoder", "pump_dump")


def _median(fn, repeat: int) -> float:  # noqa: ANN001
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def _latest_inputs(det, frames):  # noqa: ANN001, ANN202
    """The model input for the latest window of every symbol, built as ``score_batch`` builds it."""
    if det.name == "pump_dump":
        return det._candle_inputs(list(frames.items()), last_n=1)
    from detectors.features import features_from_values, frame_times, raw_values

    need = det.warmup + 1
    stacked = np.stack([raw_values(f, det.spec_, tail=need) for f in frames.values()])
    times = np.stack([frame_times(f, tail=need) for f in frames.values()])
    x = det.scaler_.transform(features_from_values(stacked, det.spec_, times))
    inputs, _ = det._split(x[:, -det.window_length :, :].astype("float32"))
    return inputs


def _one(inputs, i: int):  # noqa: ANN001, ANN202
    return {k: v[i : i + 1] for k, v in inputs.items()} if isinstance(inputs, dict) else inputs[i : i + 1]


def main(args: argparse.Namespace) -> None:
    from detectors.registry import load_detector

    args.timeframe, args.cycles, args.alerts = "1h", 1, 0
    market, _end = bc._market(args)
    frames = {f"binance:{s}": f for s, f in list(market.items())[: args.symbols]}
    for f in frames.values():
        f.index = f.index.as_unit("ns").rename("time")
    print(f"{len(frames)} symbols x {len(next(iter(frames.values())))} bars; uptime: {bc._uptime()}")
    print(
        f"{'detector':<18} {'ONNX Runtime':>13} {'tf.function':>12} {'predict/symbol':>15} {'ratio':>7} "
        f"{'score_batch first':>18} {'steady':>8}"
    )
    for name in NEURAL:
        path = sorted((Path(args.models) / name / "shared").glob("v*"), key=lambda p: int(p.name[1:]))[-1]
        os.environ["VIGIL_ONNX"] = "1"
        served = load_detector(path)
        os.environ["VIGIL_ONNX"] = "0"
        keras_side = load_detector(path)
        os.environ["VIGIL_ONNX"] = "1"
        assert served.served_by == "onnx" and keras_side.served_by == "keras", (served.served_by, keras_side.served_by)
        inputs = _latest_inputs(served, frames)
        ort_s = _median(lambda served=served, inputs=inputs: served._onnx(inputs), args.repeat)
        if name == "pump_dump":
            model = keras_side.model_
            tf_s = _median(lambda model=model, inputs=inputs: model.predict_on_batch(inputs), args.repeat)
        else:
            tf_s = _median(lambda k=keras_side, inputs=inputs: k._call(inputs), args.repeat)
        model = keras_side.model_
        model.predict(_one(inputs, 0), verbose=0)
        t0 = time.perf_counter()
        for i in range(args.predict_loop):
            model.predict(_one(inputs, i % args.symbols), verbose=0)
        per_symbol = (time.perf_counter() - t0) / args.predict_loop * len(frames)
        shorter = {k: f.iloc[:-1] for k, f in frames.items()}
        t0 = time.perf_counter()
        served.score_batch(shorter, last_n=1)
        first_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        served.score_batch(frames, last_n=1)  # one new bar: the earlier windows' raw scores are reused
        steady_s = time.perf_counter() - t0
        print(
            f"{name:<18} {ort_s * 1000:>11.1f}ms {tf_s * 1000:>10.1f}ms {per_symbol:>14.1f}s "
            f"{per_symbol / ort_s:>6.0f}x {first_s * 1000:>16.0f}ms {steady_s * 1000:>6.0f}ms"
        )
    print(f"uptime: {bc._uptime()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True)
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--predict-loop", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=8)
    main(parser.parse_args())
