"""The chart of a trade-stream alert: the last minutes of price and rush orders, chunk by chunk.

A pump alert from the stream comes seconds into the pump, so the chart shows what a reader
must judge quickly: the price of every chunk (last and highest trade), the rush orders
(same-millisecond multi-fill buys) and all orders per chunk, and the pump score against its
threshold, with the alerted chunk marked. Pure (frame in, PNG bytes out) on an Agg canvas,
like :mod:`bot.alerts.charts`, so it can run in a worker thread.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = ["load_stream_chart_inputs", "render_chunk_chart", "stream_grain"]


def stream_grain(alert: Any) -> int | None:
    """Chunk seconds when ``alert`` came from the trade stream (its events say ``grain = "trades"``), else None."""
    for e in getattr(alert, "events", None) or []:
        details = getattr(e, "details", None) or {}
        if details.get("grain") == "trades":
            return int(details.get("chunk_s") or 15)
    return None


def load_stream_chart_inputs(session: Any, alert: Any, chunk_s: int, minutes: float = 10.0) -> pd.DataFrame:
    """Stored chunks of the alert's symbol for ``minutes`` up to and including the alerted chunk."""
    from storage.streams import load_chunks

    start = int(alert.bar_ts) - int(minutes * 60_000)
    return load_chunks(session, alert.exchange, alert.symbol, chunk_s, start_ms=start, end_ms=int(alert.bar_ts) + 1)


def render_chunk_chart(
    chunks: pd.DataFrame,
    *,
    alert_ts: pd.Timestamp | None = None,
    threshold: float | None = None,
    title: str = "",
    width_px: int = 900,
    dpi: int = 100,
) -> bytes:
    """PNG of chunk price (last, max), rush orders and orders, and the score against ``threshold``.

    ``chunks`` is indexed by chunk start (UTC) with ``price, price_max, rush, trades`` and
    optionally ``score`` (:func:`storage.streams.load_chunks`).
    """
    if chunks.empty:
        raise ValueError("render_chunk_chart: no chunks to draw")
    frame = chunks.sort_index()
    has_score = "score" in frame.columns and frame["score"].notna().any()
    ratios = [3.0, 1.6] + ([1.2] if has_score else [])
    fig = Figure(figsize=(width_px / dpi, (260 + 110 * len(ratios)) / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios, "hspace": 0.08})
    x = mdates.date2num(frame.index.to_pydatetime())
    step = float(np.median(np.diff(x))) if len(x) > 1 else 15 / 86_400
    ax_p, ax_r = axes[0], axes[1]
    ax_p.plot(x, frame["price"].to_numpy(float), color="#1e88e5", linewidth=1.4, label="last")
    ax_p.plot(x, frame["price_max"].to_numpy(float), color="#90caf9", linewidth=1.0, label="high")
    ax_p.set_ylabel("price")
    ax_p.legend(loc="upper left", fontsize=7)
    ax_r.bar(x, frame["trades"].to_numpy(float), width=step * 0.8, color="#b0bec5", label="orders")
    ax_r.bar(x, frame["rush"].to_numpy(float), width=step * 0.8, color="#ff6f00", label="rush orders")
    ax_r.set_ylabel("per chunk")
    ax_r.legend(loc="upper left", fontsize=7)
    if has_score:
        ax_s = axes[2]
        ax_s.plot(x, frame["score"].to_numpy(float), color="#1e88e5", linewidth=1.0)
        if threshold is not None:
            ax_s.axhline(float(threshold), color="#e53935", linestyle="--", linewidth=1.0)
        ax_s.set_ylim(0, 1.02)
        ax_s.set_ylabel("P(pump)")
    if alert_ts is not None:
        xa = mdates.date2num(pd.Timestamp(alert_ts).to_pydatetime())
        for axis in axes:
            axis.axvline(xa + step / 2, color="#ff6f00", alpha=0.5, linewidth=1.2)
    for axis in axes:
        axis.grid(alpha=0.25)
    axes[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    if title:
        ax_p.set_title(title, fontsize=11)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.93 if title else 0.98, bottom=0.08)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()
