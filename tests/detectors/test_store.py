from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from detectors.registry import create_detector
from detectors.store import load_latest_model, retrain, save_model
from storage.db import session_scope
from storage.models import ModelRecord


@pytest.mark.slow
def test_store_versions_models_and_loads_latest(session_factory, tmp_path, make_candles) -> None:
    frames = {"A": make_candles(200, seed=1), "B": make_candles(200, seed=2)}
    det = create_detector("lstm_forecaster", units=4, lookback=6, epochs=1).fit(frames)
    with session_scope(session_factory) as session:
        first = save_model(session, det, scope="shared", root=tmp_path, metrics={"event_f1": 0.9})
    record = retrain(session_factory, "lstm_forecaster", frames, scope="shared", root=tmp_path)
    assert (first.version, record.version) == (1, 2)
    assert record.params["units"] == 4  # kept from the previous version
    with session_scope(session_factory) as session:
        rows = session.scalars(select(ModelRecord).order_by(ModelRecord.version)).all()
        assert [r.active for r in rows] == [False, True]
        assert rows[0].metrics == {"event_f1": 0.9}
        assert rows[1].train_start is not None and rows[1].train_end > rows[1].train_start
        loaded = load_latest_model(session, "lstm_forecaster", root=tmp_path)
        assert load_latest_model(session, "lstm_forecaster", scope="BTC/USDT", root=tmp_path) is None
    probe = make_candles(100, seed=3)
    again = create_detector("lstm_forecaster")
    assert loaded is not None and loaded.params["units"] == 4
    assert np.isfinite(loaded.score(probe).iloc[-1])
    assert again.params["units"] == 50
