"""Backtests of strategies on anomaly events (see docs/backtest.md).

Kept empty on purpose: ``vigil --help`` imports ``bot.cli.backtest``, and this
package's modules pull numba and vectorbt. Import from the modules:
``backtest.engine.run_backtest``, ``backtest.service.backtest_symbol``,
``backtest.sweep.run_sweep``, ``backtest.strategy.make_strategy``.
"""

__all__: list[str] = []
