"""Model files live under ``paths.models_dir`` and the database stores them relative to it.

So the same database and models work from any working directory (a systemd
unit, a cron job), and rows written by older versions (relative to the
trainer's working directory, or absolute) still load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.reports import DetectorRun
from bot.runtime.compose import compose
from core.config import load_config
from core.errors import DetectorError
from detectors.store import model_path
from storage.db import open_database
from storage.models import ModelRecord
from tests.bot.runtime.test_restart import _toml
from tests.bot.telegram.helpers import candles
from tests.fakes import detectors as fake_detectors
from tests.fakes.binance import FakeBinance

H = 3_600_000


def _config_file(folder: Path, ex: FakeBinance) -> Path:
    """A config file in ``folder`` with models_dir relative to it and the database by absolute path."""
    path = folder / "config.toml"
    path.write_text(
        f"""
[database]
url = "sqlite:///{folder / "vigil.db"}"
[exchanges.binance]
max_retries = 0
ccxt_config = {_toml(ex.ccxt_config())}
[paths]
models_dir = "state/models"
[[watchlist]]
exchange = "binance"
symbol = "BTC/USDT"
timeframe = "1h"
[detectors.tiny_model]
[scheduler]
history_bars = 150
""",
        encoding="utf-8",
    )
    return path


async def _cycle_from(
    cwd: Path, config: Path, now_ms: int, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, DetectorRun], Any]:
    """What ``vigil run --config FILE`` started in ``cwd`` does: load the config there, compose, one cycle."""
    monkeypatch.chdir(cwd)
    cfg = load_config(config)
    _engine, factory = open_database(cfg.database.url)
    system = await compose(cfg, factory, detector_options={"min_train_rows": 100})
    try:
        await system.runtime.run_cycle("1h", now_ms=now_ms)
        return {r.name: r for r in system.detectors.runs()}, factory
    finally:
        await system.aclose()


async def test_the_same_database_and_models_work_from_another_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_detectors.register(monkeypatch)
    frame = candles(200, seed=3)
    close = int(frame.index[-1].value // 10**6) + H
    (tmp_path / "etc").mkdir()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    async with FakeBinance({"BTC/USDT": frame}) as ex:
        config = _config_file(tmp_path / "etc", ex)
        first, factory = await _cycle_from(tmp_path / "one", config, close - H, monkeypatch)
        assert first["tiny_model"].version == "v1"  # trained and stored from the first directory
        with factory() as s:
            [record] = s.scalars(select(ModelRecord)).all()
        assert record.path == "tiny_model/shared/v1"  # relative to models_dir, not to the working directory
        assert (tmp_path / "etc" / "state" / "models" / "tiny_model" / "shared" / "v1").is_dir()
        assert not (tmp_path / "one" / "models").exists()

        second, factory = await _cycle_from(tmp_path / "two", config, close, monkeypatch)
    run = second["tiny_model"]
    assert run.loaded and run.version == "v1" and not run.failing  # loaded, not retrained or skipped
    with factory() as s:
        assert len(s.scalars(select(ModelRecord)).all()) == 1


def test_rows_written_by_older_versions_still_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "models"
    folder = root / "tiny_model" / "shared" / "v3"
    folder.mkdir(parents=True)
    legacy = ModelRecord(detector="tiny_model", scope="shared", version=3, path="models/tiny_model/shared/v3")
    monkeypatch.chdir(tmp_path)
    assert model_path(legacy, root) == folder  # relative to the working directory of the old trainer
    monkeypatch.chdir(tmp_path.parent)
    assert model_path(legacy, root) == folder  # ... or wherever: found by the layout under models_dir
    absolute = ModelRecord(detector="tiny_model", scope="shared", version=3, path=str(folder))
    assert model_path(absolute, tmp_path / "elsewhere") == folder
    missing = ModelRecord(detector="tiny_model", scope="shared", version=4, path="tiny_model/shared/v4")
    with pytest.raises(DetectorError, match="model files of tiny_model v4 .* not found .*VIGIL_MODELS_DIR"):
        model_path(missing, root)
