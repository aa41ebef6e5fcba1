"""Backtest sweep: 1 year hourly x 10 symbols x 1,000 parameter combinations (aim: < 5 s, first call included).

Peer, in the same run: backtesting.py 0.6 (``backtesting``) on the same
strategy (fixed hold with a stop-loss, entries on the next open after an
event). It runs one combination on one symbol per ``Backtest.run``, so it
is timed on ``--peer-runs`` (symbol, combination) pairs and extrapolated
to all 10,000, which is said in the output.

    python bench/bench_backtest_sweep.py [--symbols 10] [--days 365] [--peer-runs 20] [--cold-cache]

``--cold-cache`` points numba at an empty cache directory first, to show
the one-time compile cost of the trade scheduler on a fresh install.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--days", type=float, default=365)
    ap.add_argument("--peer-runs", type=int, default=20)
    ap.add_argument("--cold-cache", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's per-run progress bar
    if args.cold_cache:
        os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="vigil-numba-")

    t0 = time.perf_counter()
    import numpy as np
    import pandas as pd
    import vectorbt  # noqa: F401  (imported here so its 3 s import is reported on its own line)

    from backtest.engine import run_backtest
    from backtest.events import normalize_events
    from backtest.strategy import make_strategy
    from backtest.sweep import run_sweep
    from feeds.synthetic import generate_market

    t_import = time.perf_counter() - t0

    market = generate_market(args.symbols, days=args.days, timeframe="1h", seed=0, faults=False)
    candles = market.candles
    # A causal event score: |log return| over the std of the previous week's returns.
    rows = []
    for sym, frame in candles.items():
        r = np.log(frame["close"]).diff()
        score = (r.abs() / r.rolling(168).std().shift(1)).to_numpy()
        hit = np.flatnonzero(score >= 2.0)
        rows.append(pd.DataFrame({"timestamp": frame.index[hit], "score": score[hit], "symbol": sym}))
    events = normalize_events(pd.concat(rows))
    n_bars = len(next(iter(candles.values())))

    grid = {
        "min_score": [2.0, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 4.5],
        "hold_bars": [1, 2, 4, 6, 8, 12, 16, 24, 36, 48],
        "stop_loss": [None, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.08],
    }
    base = make_strategy("fixed_hold", {"fees": 0.001, "slippage": 0.0})

    t0 = time.perf_counter()
    sweep = run_sweep(candles, events, base, grid)
    t_first = time.perf_counter() - t0
    t0 = time.perf_counter()
    sweep = run_sweep(candles, events, base, grid)
    t_warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = run_backtest(candles, events, base.replace(min_score=3.0, hold_bars=12), random_draws=100)
    t_single = time.perf_counter() - t0

    peer_per_run, check = bench_backtesting_py(candles, events, base, grid, args.peer_runs)
    n_cols = sweep.columns
    peer_total = peer_per_run * n_cols

    print(f"data: {args.symbols} symbols x {n_bars} hourly bars, {len(events)} candidate events (score >= 2)")
    print(
        f"grid: {len(sweep.table)} combinations x {args.symbols} symbols = {n_cols} columns, "
        f"{int(sweep.table['trades'].sum())} trades"
    )
    print(f"numba cache: {'cold (fresh dir)' if args.cold_cache else 'default (warm after the first run)'}")
    print(f"import numpy/pandas/vectorbt/backtest: {t_import:.2f} s")
    print(f"vigil run_sweep, first call: {t_first:.2f} s")
    print(f"vigil run_sweep, second call: {t_warm:.2f} s")
    print(
        f"vigil run_backtest, one combination x {args.symbols} symbols with {single.random_draws} random draws: "
        f"{t_single:.2f} s "
        f"({int(single.metrics['strategy']['trades'])} trades)"
    )
    print(
        f"backtesting.py {backtesting_version()}: {peer_per_run * 1000:.1f} ms per (symbol, combination) run, "
        f"timed on {args.peer_runs} runs; extrapolated to {n_cols} runs: {peer_total:.0f} s"
    )
    print(f"ratio (backtesting.py extrapolated / vigil first call): {peer_total / t_first:.0f}x")
    print(
        f"same-strategy check on {check['label']}: trades vigil {check['vigil_trades']} vs backtesting.py "
        f"{check['peer_trades']}, total return vigil {check['vigil_return']:.4%} vs backtesting.py "
        f"{check['peer_return']:.4%}"
    )


def backtesting_version() -> str:
    import backtesting

    return backtesting.__version__


def bench_backtesting_py(candles, events, base, grid, runs):  # type: ignore[no-untyped-def]
    """Time backtesting.py on ``runs`` (symbol, combination) pairs; check one against vigil."""
    import itertools
    import warnings

    import numpy as np
    from backtesting import Backtest, Strategy

    from backtest.engine import run_backtest

    class FixedHold(Strategy):
        min_score = 2.0
        hold_bars = 12
        stop_loss = None

        def init(self) -> None:
            pass

        def next(self) -> None:
            i = len(self.data) - 1
            if self.position:
                trade = self.trades[-1]
                if self.stop_loss is not None and trade.sl is None:
                    trade.sl = trade.entry_price * (1 - self.stop_loss)
                if i >= trade.entry_bar + self.hold_bars - 1:
                    self.position.close()
            elif self.data.Score[-1] >= self.min_score:
                self.buy()

    combos = list(itertools.product(*grid.values()))
    rng = np.random.default_rng(0)
    picks = [(list(candles)[rng.integers(len(candles))], combos[rng.integers(len(combos))]) for _ in range(runs)]
    frames = {}
    for sym, frame in candles.items():
        f = frame.rename(columns=str.capitalize)[["Open", "High", "Low", "Close", "Volume"]].copy()
        score = events.loc[events.symbol == sym].set_index("timestamp")["score"]
        f["Score"] = score.reindex(f.index).fillna(-np.inf).to_numpy()
        f.index = f.index.tz_localize(None)
        frames[sym] = f
    elapsed = 0.0
    stats = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for sym, combo in picks:
            params = dict(zip(grid, combo, strict=True))
            bt = Backtest(frames[sym], FixedHold, cash=1e9, commission=base.fees, finalize_trades=True)
            t0 = time.perf_counter()
            stats = bt.run(**params)
            elapsed += time.perf_counter() - t0
        sym, combo = picks[0]
        params = dict(zip(grid, combo, strict=True))
        bt = Backtest(frames[sym], FixedHold, cash=1e9, commission=base.fees, finalize_trades=True)
        stats = bt.run(**params)
    ours = run_backtest({sym: candles[sym]}, events, base.replace(**params), random_draws=10)
    check = {
        "label": f"{sym} {params}",
        "vigil_trades": int(ours.metrics["strategy"]["trades"]),
        "peer_trades": int(stats["# Trades"]),
        "vigil_return": ours.metrics["strategy"]["total_return"],
        "peer_return": float(stats["Return [%]"]) / 100,
    }
    return elapsed / runs, check


if __name__ == "__main__":
    main()
