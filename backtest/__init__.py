"""Backtests of strategies on anomaly events (see docs/backtest.md).

The public face, loaded on first use because the engine pulls in vectorbt::

    from backtest import run_backtest, backtest_symbol, run_sweep, make_strategy, walk_forward_events
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["backtest_symbol", "make_strategy", "run_backtest", "run_sweep", "walk_forward_events"]

_WHERE = {
    "run_backtest": "backtest.engine",
    "backtest_symbol": "backtest.service",
    "run_sweep": "backtest.sweep",
    "make_strategy": "backtest.strategy",
    "walk_forward_events": "backtest.walkforward",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'backtest' has no attribute {name!r}")
