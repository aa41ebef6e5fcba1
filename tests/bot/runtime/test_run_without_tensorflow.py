"""``vigil run`` with every model exported to ONNX scores its first cycle without importing TensorFlow.

The models are trained here (small) and saved through the model store, which writes the
ONNX export next to each ``.keras`` file. ``vigil run`` then runs in a subprocess under
``python -X importtime``, which lists every module the process imports; after its first
cycle has finished it is stopped and the list is read.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from detectors.pump.detector import PumpDumpDetector
from detectors.registry import create_detector
from detectors.store import save_model
from storage.db import open_database
from storage.models import Cycle, Event, utcnow
from tests.bot.runtime.test_restart import _toml
from tests.conftest import _make_candles
from tests.detectors.pump.pump_data import candle_frame, pump_labels
from tests.fakes.binance import FakeBinance

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SYMBOLS = ["AAA/USDT", "BBB/USDT"]


def _frames(now_min: pd.Timestamp) -> dict[str, pd.DataFrame]:
    frames = {}
    for i, symbol in enumerate(SYMBOLS):
        frame = _make_candles(400, seed=i, spike_at=390)
        frame.index = pd.date_range(end=now_min, periods=len(frame), freq="1min", tz="UTC")
        frames[symbol] = frame
    return frames


def _train(factory, models: Path, frames: dict[str, pd.DataFrame]) -> None:
    train = {s: f.iloc[:300] for s, f in frames.items()}
    tiny = {"epochs": 1, "lookback": 8, "batch_size": 64}
    detectors = [
        create_detector("lstm_forecaster", **tiny, units=8).fit(train),
        create_detector("lstm_autoencoder", **tiny, latent=8).fit(train),
    ]
    pumps = {s: candle_frame(160, seed=i, pumps=(60, 120)) for i, s in enumerate(["A/BTC", "B/BTC"])}
    labels = pd.concat([pump_labels(s, f, (60, 120)) for s, f in pumps.items()], ignore_index=True)
    detectors.append(PumpDumpDetector(lookback=8, epochs=1, filters=4, lstm_units=4).fit(pumps, labels))
    with factory.begin() as s:
        for det in detectors:
            record = save_model(s, det, root=models)
            assert (models / record.path / "model.onnx").is_file()  # paths are stored relative to the models folder


async def test_vigil_run_serves_onnx_models_without_importing_tensorflow(tmp_path: Path) -> None:
    now_min = pd.Timestamp.now(tz="UTC").floor("1min")
    frames = _frames(now_min)
    db, models = tmp_path / "vigil.db", tmp_path / "models"
    _engine, factory = open_database(f"sqlite:///{db}")
    _train(factory, models, frames)
    seeded = int(now_min.value // 10**6) - 20 * 60_000  # the last finished cycle: 20 minutes ago
    with factory.begin() as s:
        s.add(Cycle(timeframe="1m", until_ms=seeded, finished_at=utcnow()))
    async with FakeBinance(frames, timeframe="1m") as ex:
        cfg = tmp_path / "config.toml"
        watch = "".join(f'[[watchlist]]\nexchange = "binance"\nsymbol = "{s}"\ntimeframe = "1m"\n' for s in SYMBOLS)
        cfg.write_text(
            f'[database]\nurl = "sqlite:///{db}"\n[exchanges.binance]\nmax_retries = 1\n'
            f"ccxt_config = {_toml(ex.ccxt_config())}\n{watch}"
            "[detectors.zscore]\n[detectors.lstm_forecaster]\n[detectors.lstm_autoencoder]\n[detectors.pump_dump]\n"
            f'[alerts]\nchart_dir = "{tmp_path / "charts"}"\nchart_workers = 0\n'
            "[scheduler]\nclose_delay_seconds = 30\nhistory_bars = 400\n"  # zscore looks back a day of bars (288 at 1m)
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
        env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-X", "importtime", "-m", "bot", "run", "--config", str(cfg), "--models", str(models)),
            env=env,
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

        def finished() -> bool:
            with factory() as s:
                done = select(func.count()).select_from(Cycle).where(Cycle.finished_at.is_not(None))
                return bool(s.scalar(done.where(Cycle.until_ms > seeded)))

        deadline = time.monotonic() + 180
        while not finished() and time.monotonic() < deadline and proc.returncode is None:
            await asyncio.sleep(0.3)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    log = err.decode(errors="replace")
    assert finished(), log[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in log.splitlines() if line.startswith("import time:")}
    assert "onnxruntime" in imported and "detectors.onnx_runtime" in imported
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras", "tf2onnx")}
    # the cycle really scored with the neural detectors, and the planted spike became an event
    assert "served by onnx: lstm_autoencoder, lstm_forecaster, pump_dump" in log, log[-3000:]
    with factory() as s:
        cycle = s.scalars(select(Cycle).where(Cycle.until_ms > seeded)).first()
        spikes = set(s.scalars(select(Event.symbol).where(Event.detector == "zscore")))
    assert cycle is not None and cycle.errors == 0, cycle.last_error if cycle else None
    assert spikes == set(SYMBOLS)
