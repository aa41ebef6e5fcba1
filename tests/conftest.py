"""Shared fixtures: databases on both dialects, the shared data folder, no network."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _var in [v for v in os.environ if v.startswith("VIGIL_") and v != "VIGIL_TEST_POSTGRES_URL"]:
    del os.environ[_var]  # a developer's own VIGIL_* settings must not leak into tests
# The default data directory (models_dir) is under $XDG_DATA_HOME: never the developer's own.
os.environ["XDG_DATA_HOME"] = tempfile.mkdtemp(prefix="vigil-test-data-")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
POSTGRES_URL = os.environ.get("VIGIL_TEST_POSTGRES_URL")


@pytest.fixture(autouse=True)
def _no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach a non-loopback address."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and self.family in (socket.AF_INET, socket.AF_INET6):
            if not (host.startswith("127.") or host in {"localhost", "::1"}):
                pytest.fail(f"network access disallowed in tests: {address!r}")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder not found at {SHARED_DATA}")
    return SHARED_DATA


def _reset_postgres(url: str) -> None:
    from storage.db import make_engine

    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each dialect (PostgreSQL only when configured)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vigil.db'}"
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL not configured: set VIGIL_TEST_POSTGRES_URL (CI does)")
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'vigil.db'}"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from storage.db import make_engine, upgrade

    eng = make_engine(db_url)
    upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    from storage.db import make_sessionmaker

    return make_sessionmaker(engine)


def _make_candles(n: int = 400, seed: int = 0, spike_at: int | None = None) -> pd.DataFrame:
    """A random-walk candle frame, optionally with a price+volume spike at one row."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    volume = np.exp(rng.normal(5, 0.3, n))
    if spike_at is not None:
        close[spike_at:] *= 1.25
        volume[spike_at] *= 30
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.004, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.004, n))
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=idx)


@pytest.fixture(scope="session")
def make_candles():  # noqa: ANN201
    """The candle factory itself, for tests that need several series."""
    return _make_candles
