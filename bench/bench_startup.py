"""``vigil run`` from start to its first finished cycle, with trained models on disk: time and memory.

    python bench/bench_startup.py --models DIR [--symbols 500] [--runs 2]

``DIR`` holds models saved by ``bench/bench_cycle.py --models DIR`` (Keras + ONNX). Set-up
(not timed): the synthetic market of ``bench_cycle`` shifted so that its newest bar closed in
the current hour, served by ``tests.fakes.binance.FakeBinance`` in a separate process; a
database holding the 500-bar history of every symbol (one bar short of the newest) and the
models registered. Timed: ``python -m bot run`` is spawned on a copy of that database; the
clock runs from the spawn to the first finished cycle in the database (interpreter start,
imports, building the system, loading the models, filling the candle ring from the database,
the catch-up cycle: fetching the newest bar of every symbol, scoring, storing). Memory is the
process's peak resident set (``VmHWM``) at that moment. Each run is done with the models
served by ONNX Runtime and with ``VIGIL_ONNX=0`` (Keras, which imports TensorFlow), in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import bench_cycle as bc  # noqa: E402


def _toml(value: object) -> str:
    from tests.bot.runtime.test_restart import _toml as to_toml

    return to_toml(value)


def _status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(rest.split()[0]) // 1024  # MiB
    return out


async def _setup(args: argparse.Namespace, ccxt_config: dict, db: Path, models: Path, now_ms: int) -> None:
    from rich.console import Console

    from bot.runtime.compose import compose
    from core.config import default_config
    from storage.db import open_database

    frames, _end = bc._market(args)
    cfg = default_config(
        database={"url": f"sqlite:///{db}"},
        exchanges={"binance": {"ccxt_config": ccxt_config}},
        watchlist=[{"exchange": "binance", "symbol": s, "timeframe": "1h"} for s in sorted(frames)],
        scheduler={"history_bars": bc.HISTORY_BARS},
    )
    engine, factory = open_database(cfg.database.url)
    registered = bc._register_models(factory, models)
    bc._silence_noise(factory, 0)  # as in bench_cycle: the small pump model's noise would alert on every symbol
    with open(os.devnull, "w") as devnull:
        system = await compose(cfg, factory, model_root=models, console=Console(file=devnull), with_application=False)
        try:
            report = await system.runtime.run_cycle("1h", now_ms=now_ms)
        finally:
            await system.aclose()
            engine.dispose()
    print(f"set-up: {report.candles_added} candles stored, models registered: {registered}")


def _config(path: Path, db: Path, ccxt_config: dict, symbols: list[str]) -> None:
    watch = "".join(f'[[watchlist]]\nexchange = "binance"\nsymbol = "{s}"\ntimeframe = "1h"\n' for s in symbols)
    path.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[exchanges.binance]\nccxt_config = {_toml(ccxt_config)}\n{watch}'
        f'[alerts]\nchart_dir = "{path.parent / "charts"}"\n[scheduler]\nhistory_bars = {bc.HISTORY_BARS}\n'
    )


def _finished_cycles(db: Path) -> int:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM cycles WHERE finished_at IS NOT NULL").fetchone()[0])


def _run_once(cfg: Path, models: Path, db: Path, onnx: bool) -> tuple[float, dict[str, int], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"PYTHONPATH": str(ROOT), "NO_PROXY": "127.0.0.1,localhost", "VIGIL_ONNX": "1" if onnx else "0"})
    before = _finished_cycles(db)
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--config", str(cfg), "--models", str(models)],
        env=env,
        cwd=str(cfg.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    mem: dict[str, int] = {}
    while _finished_cycles(db) == before and proc.poll() is None and time.monotonic() - t0 < 300:
        mem = _status(proc.pid)
        time.sleep(0.05)
    took = time.monotonic() - t0
    mem = _status(proc.pid) if proc.poll() is None else mem
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    (cfg.parent / f"vigil-run-{'onnx' if onnx else 'keras'}.log").write_text(err)
    ready = next((line for line in err.splitlines() if "ready;" in line), "(no 'ready' line)")
    return took, mem, ready.split("ready;")[-1].strip()


def main(args: argparse.Namespace) -> None:
    models = Path(args.models)
    step = bc.STEP["1h"]
    now_floor = int(time.time() * 1000) // step * step
    bars = bc.HISTORY_BARS + args.cycles + 50
    args.start = str(bc.pd.Timestamp(now_floor - bars * step, unit="ms", tz="UTC"))  # newest bar closes at now_floor
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=bc._serve, args=(args, child), daemon=True)
    server.start()
    ccxt_config = parent.recv()
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(args.keep) if args.keep else Path(tmp_name)
            tmp.mkdir(parents=True, exist_ok=True)
            snapshot = tmp / "setup.db"
            asyncio.run(_setup(args, ccxt_config, snapshot, models, now_floor - step))  # one bar short
            frames, _end = bc._market(args)
            db = tmp / "vigil.db"
            cfg = tmp / "config.toml"
            _config(cfg, db, ccxt_config, sorted(frames))
            print(f"uptime: {bc._uptime()}")
            for i in range(args.runs):
                for onnx in (True, False):
                    for suffix in ("", "-wal", "-shm"):
                        Path(str(db) + suffix).unlink(missing_ok=True)
                    shutil.copy(snapshot, db)
                    took, mem, ready = _run_once(cfg, models, db, onnx)
                    print(
                        f"run {i + 1}, {'ONNX Runtime' if onnx else 'Keras (VIGIL_ONNX=0)'}: first cycle finished "
                        f"{took:.2f}s after the spawn; peak RSS {mem.get('VmHWM', 0)} MiB; {ready}"
                    )
            print(f"uptime: {bc._uptime()}")
    finally:
        parent.send("stop")
        server.join(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="models saved by bench_cycle.py --models DIR (1h)")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--keep", help="keep the database, config and the runs' logs in this folder")
    parsed = parser.parse_args()
    parsed.timeframe, parsed.cycles, parsed.alerts = "1h", 1, 0
    main(parsed)
