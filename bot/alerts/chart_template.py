"""The alert chart drawn on a reused figure: the same picture as ``render_alert_chart``, about 3x cheaper.

Why: most of a fresh chart's time goes into building the figure, not drawing it
(matplotlib creates every axis, tick and label lazily on the first draw). An
alert chart always has the same layout (price, volume, optional social volume,
score / threshold), so a :class:`ChartTemplate` builds that figure once per
layout and, for each alert, only replaces the data of its artists (candle
collections, lines, markers) and the limits, then saves the PNG. One template
serves one thread or process at a time: the dispatcher's worker pool keeps one
per worker (``bot/alerts/chart_pool.py``).

What it draws is what :func:`bot.alerts.charts.render_alert_chart` draws for
an alert (candles, volume, social volume when present, each event as a
marker and as score / threshold on the score panel); ``tests/bot/telegram/
test_chart_delivery.py`` compares the two pictures.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import Any

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

__all__ = ["ChartTemplate", "render_with_template"]

_UP, _DOWN, _EVENT = "#26a69a", "#ef5350", "#ff6f00"
_MARGIN = 0.05  # matplotlib's default axes margin, applied by autoscale_view


def _box_verts(x: np.ndarray, bottom: np.ndarray, top: np.ndarray, width: float) -> np.ndarray:
    top = np.where(top - bottom < 1e-12 * np.abs(top), bottom + 1e-9 * np.abs(top) + 1e-12, top)
    left, right = x - width / 2, x + width / 2
    return np.stack([np.column_stack(p) for p in ((left, bottom), (left, top), (right, top), (right, bottom))], axis=1)


@dataclass
class _Layout:
    fig: Figure
    axes: list[Any]
    wicks: LineCollection
    bodies: PolyCollection
    volume: PolyCollection
    markers: Any  # PathCollection of the events on the price panel
    event_lines: list[LineCollection]  # one per lower panel, vertical lines at the events
    social: Any | None  # Line2D
    ratios: Any  # PathCollection: score / threshold of each event
    title: Any


class ChartTemplate:
    """Figures by layout (with or without social volume), built once and refilled for each alert."""

    def __init__(self, width_px: int = 1000, dpi: int = 100) -> None:
        self.width_px = width_px
        self.dpi = dpi
        self._layouts: dict[bool, _Layout] = {}

    def _build(self, has_social: bool) -> _Layout:
        ratios = [4.0, 1.2] + ([1.0] if has_social else []) + [1.4]
        fig = Figure(figsize=(self.width_px / self.dpi, (300 + 110 * len(ratios)) / self.dpi), dpi=self.dpi)
        FigureCanvasAgg(fig)
        axes = list(fig.subplots(len(ratios), 1, sharex=True, gridspec_kw={"height_ratios": ratios, "hspace": 0.06}))
        ax_price, ax_vol, ax_score = axes[0], axes[1], axes[-1]
        wicks = LineCollection([], linewidths=0.8)
        ax_price.add_collection(wicks, autolim=False)
        bodies = PolyCollection([], edgecolors="none")
        ax_price.add_collection(bodies, autolim=False)
        volume = PolyCollection([], edgecolors="none", alpha=0.7)
        ax_vol.add_collection(volume, autolim=False)
        markers = ax_price.scatter([], [], marker="v", color=_EVENT, s=50, zorder=5, label="event")
        ax_price.set_ylabel("price")
        ax_vol.set_ylabel("volume")
        ax_vol.yaxis.set_major_formatter(EngFormatter())
        social = None
        if has_social:
            (social,) = axes[2].plot([], [], color="#7e57c2", linewidth=1.0)
            axes[2].set_ylabel("social")
        ax_score.axhline(1.0, color="#e53935", linestyle="--", label="threshold")
        ax_score.set_ylabel("score / thr")
        event_lines = []
        for axis in axes[1:]:
            lines = LineCollection([], colors=_EVENT, alpha=0.35, linewidths=0.8, transform=axis.get_xaxis_transform())
            axis.add_collection(lines, autolim=False)
            event_lines.append(lines)
        ratio_points = ax_score.scatter([], [], color=_EVENT, zorder=5, s=25, label="events")
        for axis in axes:
            axis.grid(alpha=0.25)
        ax_score.legend(loc="upper left", fontsize=7)
        axes[-1].xaxis.set_major_formatter(mdates.ConciseDateFormatter(axes[-1].xaxis.get_major_locator()))
        title = ax_price.set_title("", fontsize=11)
        return _Layout(fig, axes, wicks, bodies, volume, markers, event_lines, social, ratio_points, title)

    def render(self, candles: pd.DataFrame, *, events: pd.DataFrame | None = None, title: str = "") -> bytes:
        """The alert chart of ``candles`` (OHLCV, optional ``social_volume``) with ``events`` as a PNG."""
        if candles.empty:
            raise ValueError("render_alert_chart: no candles to draw")
        frame = candles.sort_index()
        has_social = bool("social_volume" in frame.columns and frame["social_volume"].notna().any())
        layout = self._layouts.get(has_social)
        if layout is None:
            layout = self._layouts[has_social] = self._build(has_social)
        ax_price, ax_vol, ax_score = layout.axes[0], layout.axes[1], layout.axes[-1]

        x = mdates.date2num(frame.index.to_pydatetime())
        step = float(np.median(np.diff(x))) if len(x) > 1 else 1 / 24
        o, h, low, c = (frame[col].to_numpy(float) for col in ("open", "high", "low", "close"))
        colors = np.where(c >= o, _UP, _DOWN)
        layout.wicks.set_segments(np.stack([np.column_stack([x, low]), np.column_stack([x, h])], axis=1))
        layout.wicks.set_color(colors)
        layout.bodies.set_verts(_box_verts(x, np.minimum(o, c), np.maximum(o, c), step * 0.7))
        layout.bodies.set_facecolor(colors)
        vol = frame["volume"].to_numpy(float)
        layout.volume.set_verts(_box_verts(x, np.zeros_like(vol), vol, step * 0.7))
        layout.volume.set_facecolor(colors)

        ev = _inside(events, frame)
        ex = mdates.date2num(pd.DatetimeIndex(ev["timestamp"]).to_pydatetime()) if len(ev) else np.empty(0)
        top = frame["high"].reindex(pd.DatetimeIndex(ev["timestamp"])).to_numpy(float) * 1.01 if len(ev) else ex
        layout.markers.set_offsets(np.column_stack([ex, top]) if len(ex) else np.empty((0, 2)))
        for lines in layout.event_lines:
            lines.set_segments([[(xv, 0.0), (xv, 1.0)] for xv in ex])
        thr = ev["threshold"].to_numpy(float) if len(ev) else np.empty(0)
        ratio = np.divide(ev["score"].to_numpy(float), thr, out=np.zeros(len(thr)), where=thr != 0) if len(ev) else thr
        layout.ratios.set_offsets(np.column_stack([ex, ratio]) if len(ex) else np.empty((0, 2)))

        # limits as autoscale_view would set them: data range plus the default 5 % margins
        half = step * 0.35
        _set_range(ax_price.set_xlim, float(x.min() - half), float(x.max() + half))
        y_lo, y_hi = float(np.nanmin(low)), float(np.nanmax(np.r_[h, top]))
        _set_range(ax_price.set_ylim, y_lo, y_hi)
        ax_vol.set_ylim(0, float(np.nanmax(vol)) * 1.05 if np.isfinite(vol).any() and np.nanmax(vol) > 0 else 1)
        if layout.social is not None:
            soc = frame["social_volume"].to_numpy(float)
            layout.social.set_data(x, soc)
            _set_range(layout.axes[2].set_ylim, float(np.nanmin(soc)), float(np.nanmax(soc)))
        ax_score.set_ylim(0, max(1.5, float(ratio.max(initial=0)) * 1.15))
        layout.title.set_text(title)
        layout.fig.subplots_adjust(left=0.08, right=0.98, top=0.95 if title else 0.98, bottom=0.06)
        buf = io.BytesIO()
        layout.fig.savefig(buf, format="png", dpi=self.dpi)
        return buf.getvalue()


def _inside(events: pd.DataFrame | None, frame: pd.DataFrame) -> pd.DataFrame:
    if events is None or events.empty:
        return pd.DataFrame(columns=["timestamp", "detector", "score", "threshold"])
    return events[(events["timestamp"] >= frame.index[0]) & (events["timestamp"] <= frame.index[-1])]


def _set_range(setter: Any, lo: float, hi: float) -> None:
    """``setter(lo - m, hi + m)`` with matplotlib's 5 % margins (a flat range gets a unit-free pad)."""
    span = hi - lo
    pad = span * _MARGIN if span > 0 else (abs(hi) * _MARGIN or 0.5)
    setter(lo - pad, hi + pad)


_LOCAL = threading.local()  # one template per thread (a figure must not be drawn by two threads at once)


def render_with_template(
    candles: pd.DataFrame, events: pd.DataFrame | None, title: str, width_px: int = 1000, dpi: int = 100
) -> bytes:
    """Render through this thread's template (the chart workers' entry point)."""
    templates: dict[tuple[int, int], ChartTemplate] = getattr(_LOCAL, "templates", None) or {}
    _LOCAL.templates = templates
    template = templates.get((width_px, dpi))
    if template is None:
        template = templates[(width_px, dpi)] = ChartTemplate(width_px, dpi)
    return template.render(candles, events=events, title=title)
