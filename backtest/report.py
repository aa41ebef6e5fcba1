"""Reports of a :class:`~backtest.engine.BacktestResult`: terminal table, JSON, PNG, HTML, chat text.

All renderers are pure functions of the result (the PNG uses matplotlib's
Agg backend, no display needed), so the CLI and the Telegram bot show the
same numbers.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backtest.engine import PORTFOLIO, BacktestResult
from backtest.metrics import METRIC_NAMES

__all__ = [
    "MetricsRows",
    "equity_png",
    "figure_png",
    "html_report",
    "metrics_rows",
    "summarize",
    "write_json",
]

_PERCENT = {"total_return", "cagr", "max_drawdown", "win_rate", "expectancy", "exposure"}
_COLUMNS = (("strategy", "strategy"), ("buy_and_hold", "buy & hold"), ("random", "random entry"))


def _fmt(name: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if name == "trades":
        return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"
    if name in _PERCENT:
        return f"{value * 100:.2f}%"
    return f"{value:.2f}"


@dataclass(frozen=True)
class MetricsRows:
    """The comparison table as plain data, for any renderer (the CLI draws it with rich)."""

    title: str
    columns: tuple[str, ...]  # "metric", then strategy, buy & hold, random entry
    rows: tuple[tuple[str, ...], ...]
    caption: str | None


def metrics_rows(result: BacktestResult) -> MetricsRows:
    """Strategy next to buy-and-hold and the random-entry baseline, formatted, one row per metric."""
    s = result.strategy
    title = (
        f"{s.name} ({s.direction}, hold {s.hold_bars} bars) on {', '.join(result.symbols) or 'candles'}: "
        f"{result.index[0]:%Y-%m-%d} .. {result.index[-1]:%Y-%m-%d}, {len(result.index)} bars"
    )
    rows = tuple(
        (name, *(_fmt(name, result.metrics[key].get(name, math.nan)) for key, _ in _COLUMNS)) for name in METRIC_NAMES
    )
    caption = None
    if result.random_draws:
        caption = (
            f"random entry: mean of {result.random_draws} draws with the strategy's trade count (win rate, profit "
            "factor and expectancy pooled over all their trades); "
            f"share of draws returning at least as much as the strategy: {result.random_p_value:.2f}"
        )
    return MetricsRows(title, ("metric", *(label for _key, label in _COLUMNS)), rows, caption)


def write_json(result: BacktestResult, path: str | Path) -> None:
    Path(path).write_text(json.dumps(result.to_dict(), indent=2))


def summarize(result: BacktestResult) -> str:
    """Plain text for a chat message (no markup)."""
    m, bh, rnd = (result.metrics[k] for k in ("strategy", "buy_and_hold", "random"))
    s = result.strategy
    lines = [
        f"Backtest {s.name} ({s.direction}, hold {s.hold_bars} bars, fees {s.fees:g}, slippage {s.slippage:g})",
        f"{', '.join(result.symbols) or 'candles'}: {result.index[0]:%Y-%m-%d %H:%M} .. "
        f"{result.index[-1]:%Y-%m-%d %H:%M} UTC, {len(result.index)} bars, {result.events_used} events",
        f"Trades {_fmt('trades', m['trades'])}, win rate {_fmt('win_rate', m['win_rate'])}, "
        f"expectancy {_fmt('expectancy', m['expectancy'])}/trade, "
        f"profit factor {_fmt('profit_factor', m['profit_factor'])}",
        f"Return {_fmt('total_return', m['total_return'])} (buy & hold {_fmt('total_return', bh['total_return'])}, "
        f"random entry {_fmt('total_return', rnd['total_return'])})",
        f"Max drawdown {_fmt('max_drawdown', m['max_drawdown'])}, Sharpe {_fmt('sharpe', m['sharpe'])}, "
        f"exposure {_fmt('exposure', m['exposure'])}",
    ]
    if result.random_draws:
        lines.append(f"{result.random_p_value:.0%} of {result.random_draws} random-entry runs did at least as well")
    return "\n".join(lines)


def equity_png(result: BacktestResult, path: str | Path | None = None) -> bytes:
    """Equity (strategy vs buy-and-hold) over drawdown, as PNG bytes; also written to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    equity = result.equity[PORTFOLIO]
    bench = result.benchmark_equity
    init = result.strategy.init_cash * len(result.symbols)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True, height_ratios=(3, 1), dpi=100)
    ax1.plot(equity.index, equity.to_numpy() / init, label="strategy", lw=1.3)
    ax1.plot(bench.index, bench.to_numpy() / init, label="buy & hold", lw=1.0, alpha=0.7)
    entries = result.trades["entry_ts"]
    if 0 < len(entries) <= 300:
        ax1.scatter(
            entries,
            equity.reindex(entries).to_numpy() / init,
            marker="^",
            s=12,
            color="tab:green",
            label="entries",
            zorder=3,
        )
    ax1.axhline(1.0, color="grey", lw=0.6)
    ax1.set_ylabel("equity (x initial)")
    ax1.legend(loc="upper left", fontsize=8)
    ax1.set_title(f"{result.strategy.name} on {', '.join(result.symbols) or 'candles'}")
    values = np.concatenate(([init], equity.to_numpy()))
    dd = values / np.maximum.accumulate(values) - 1.0
    ax2.fill_between(equity.index, dd[1:] * 100, 0, color="tab:red", alpha=0.4)
    ax2.set_ylabel("drawdown %")
    fig.autofmt_xdate()
    fig.tight_layout()
    return figure_png(fig, path)


def figure_png(fig: Any, path: str | Path | None = None) -> bytes:
    """Render a pyplot figure to PNG bytes, close it (pyplot keeps every open figure), and save if asked."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


def html_report(result: BacktestResult, path: str | Path | None = None) -> str:
    """One self-contained HTML page (chart inlined as base64, no external assets)."""
    png = base64.b64encode(equity_png(result)).decode("ascii")
    rows = "".join(
        "<tr><td>{}</td>{}</tr>".format(
            name, "".join(f"<td>{_fmt(name, result.metrics[k].get(name, math.nan))}</td>" for k, _ in _COLUMNS)
        )
        for name in METRIC_NAMES
    )
    head = "".join(f"<th>{label}</th>" for _k, label in _COLUMNS)
    trade_rows = "".join(
        f"<tr><td>{html.escape(str(t.symbol))}</td><td>{t.entry_ts:%Y-%m-%d %H:%M}</td><td>{t.entry_price:.6g}</td>"
        f"<td>{t.exit_ts:%Y-%m-%d %H:%M}</td><td>{t.exit_price:.6g}</td><td>{t.ret * 100:.2f}%</td>"
        f"<td>{t.exit_reason}</td></tr>"
        for t in result.trades.rename(columns={"return": "ret"}).itertuples(index=False)
    )
    params = html.escape(json.dumps(result.strategy.params()))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>vigil backtest: {html.escape(result.strategy.name)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}td:first-child{{text-align:left}}</style></head>
<body><h1>Backtest: {html.escape(result.strategy.name)}</h1>
<p>{html.escape(summarize(result)).replace(chr(10), "<br>")}</p>
<p><code>{params}</code></p>
<img alt="equity and drawdown" src="data:image/png;base64,{png}">
<h2>Metrics</h2><table><tr><th>metric</th>{head}</tr>{rows}</table>
<h2>Trades ({len(result.trades)})</h2>
<table><tr><th>symbol</th><th>entry</th><th>entry price</th><th>exit</th><th>exit price</th><th>return</th>
<th>exit reason</th></tr>{trade_rows}</table>
</body></html>
"""
    if path is not None:
        Path(path).write_text(page)
    return page
