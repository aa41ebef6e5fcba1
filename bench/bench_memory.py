"""How much memory one `vigil run` process needs, with and without TensorFlow models loaded.

Runs the real command (`python -m bot run --config FILE`) as a subprocess against a
local fake Binance (ccxt speaks to it over loopback), waits until the first cycle has
finished (every model trained or loaded and scoring), lets it idle for a few seconds,
then reads the process's resident memory from /proc (VmRSS now, VmHWM the peak) and
stops it with SIGTERM. Two configs, same market:

* ``statistical``: the zscore detector only (TensorFlow is never imported);
* ``neural``: zscore, lstm_forecaster, lstm_autoencoder and pump_dump (the default set).

    python bench/bench_memory.py [--symbols 5] [--idle 5]

Linux only (/proc). No Telegram token: alerts go to the console sink.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from storage.db import open_database  # noqa: E402
from storage.models import Cycle  # noqa: E402
from tests.bot.runtime.test_restart import _toml  # noqa: E402
from tests.fakes.binance import FakeBinance, make_candles  # noqa: E402

NEURAL = {
    "zscore": {},
    "lstm_forecaster": {"params": {"epochs": 2}},
    "lstm_autoencoder": {"params": {"epochs": 2}},
    "pump_dump": {},
}


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def _config(folder: Path, fake: FakeBinance, symbols: list[str], detectors: dict[str, dict]) -> Path:
    lines = [
        "[database]",
        f'url = "sqlite:///{folder / "vigil.db"}"',
        "[exchanges.binance]",
        f"ccxt_config = {_toml(fake.ccxt_config())}",
        "[paths]",
        f'models_dir = "{folder / "models"}"',
        "[alerts]",
        f'chart_dir = "{folder / "charts"}"',
        "[scheduler]",
        "history_bars = 500",
        "[logging]",
        'level = "WARNING"',
    ]
    for s in symbols:
        lines += ["[[watchlist]]", 'exchange = "binance"', f'symbol = "{s}"', 'timeframe = "1h"']
    for name, table in detectors.items():
        lines.append(f"[detectors.{name}]")
        for key, value in table.items():
            lines.append(f"{key} = {_toml(value)}")
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def measure(name: str, detectors: dict[str, dict], symbols: int, idle: float) -> dict[str, object]:
    import pandas as pd

    start = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(hours=800)).floor("1h")
    frames = {f"C{i:02d}/USDT": make_candles(str(start), periods=800, seed=i) for i in range(symbols)}
    with tempfile.TemporaryDirectory() as tmp, FakeBinance(frames).running_in_thread() as fake:
        folder = Path(tmp)
        config = _config(folder, fake, sorted(frames), detectors)
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--config", str(config)],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _engine, factory = open_database(f"sqlite:///{folder / 'vigil.db'}")
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name}: vigil run exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
                with factory() as s:
                    done = s.scalar(select(func.count()).select_from(Cycle).where(Cycle.finished_at.is_not(None)))
                if done:
                    break
                time.sleep(0.5)
            first_cycle_s = time.perf_counter() - t0
            time.sleep(idle)
            mem = _status(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
    return {"config": name, "symbols": symbols, "first_cycle_s": round(first_cycle_s, 1), **mem}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0)
    args = parser.parse_args()
    for name, detectors in (("statistical", {"zscore": {}}), ("neural", NEURAL)):
        print(json.dumps(measure(name, detectors, args.symbols, args.idle)), flush=True)


if __name__ == "__main__":
    main()
