"""Small hand-made series for detector tests (the synthetic market is tested elsewhere)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import _make_candles


@pytest.fixture
def candles() -> pd.DataFrame:
    return _make_candles()
