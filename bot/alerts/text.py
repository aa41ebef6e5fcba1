"""Alert text and buttons: pure functions from stored rows to a Telegram message.

:func:`compose_alert` is pure (no I/O, no clock): the dispatcher, the console
sink and the tests call it with the alert's events and the candles up to the
bar. Everything that came from data (symbol, detector names) is HTML-escaped,
because the message is sent with ``parse_mode=HTML``.

Callback data is versioned and tiny (``v1:m:123``): Telegram caps it at 64
bytes, and an old button pressed after an upgrade must be recognised as old,
not misread.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from telegram import InlineKeyboardButton, InlineKeyboardMarkup

__all__ = [
    "CALLBACK_ACTIONS",
    "AlertMetrics",
    "alert_keyboard",
    "alert_metrics",
    "compose_alert",
    "decode_callback",
    "encode_callback",
    "html_to_text",
    "stream_facts",
]

CALLBACK_VERSION = "v1"
CALLBACK_ACTIONS = {"m": "mute 1 h", "c": "7-day chart", "b": "backtest", "d": "details"}
_CALLBACK_RE = re.compile(r"^v1:([mcbd]):([1-9][0-9]{0,17})$")
BASELINE_BARS = 24
_SEVERITY_ICON = {"low": "🟡", "medium": "🟠", "high": "🔴"}


@dataclass(frozen=True)
class AlertMetrics:
    """How the alert bar compares with the bars before it (NaN when unknown)."""

    close: float = math.nan
    price_change: float = math.nan  # close / previous close - 1
    volume_multiple: float = math.nan  # volume / median volume of the previous bars
    social_multiple: float = math.nan


def alert_metrics(candles: pd.DataFrame | None, bar_ts: int, baseline: int = BASELINE_BARS) -> AlertMetrics:
    """Metrics of the bar opening at ``bar_ts`` against the ``baseline`` bars before it.

    Uses only rows at or before the bar, so it tells what was known at alert time.
    """
    if candles is None or candles.empty:
        return AlertMetrics()
    when = pd.Timestamp(bar_ts, unit="ms", tz="UTC")
    upto = candles.loc[candles.index <= when]
    if upto.empty or upto.index[-1] != when:
        return AlertMetrics()
    bar = upto.iloc[-1]
    prior = upto.iloc[-1 - baseline : -1]
    prev_close = float(prior["close"].iloc[-1]) if len(prior) else float(bar["open"])
    change = float(bar["close"]) / prev_close - 1 if prev_close else math.nan
    med_vol = float(prior["volume"].median()) if len(prior) else math.nan
    vol_mult = float(bar["volume"]) / med_vol if med_vol and not math.isnan(med_vol) else math.nan
    social_mult = math.nan
    if "social_volume" in upto.columns and len(prior):
        med_social = float(prior["social_volume"].median())
        value = float(bar["social_volume"])
        if med_social and not math.isnan(med_social) and not math.isnan(value):
            social_mult = value / med_social
    return AlertMetrics(float(bar["close"]), change, vol_mult, social_mult)


def _fmt_price(x: float) -> str:
    if math.isnan(x):
        return "?"
    return f"{x:,.2f}" if abs(x) >= 100 else f"{x:.6g}"


def _fmt_score(x: float) -> str:
    """Three significant digits, but enough decimals to tell probabilities near 1 apart (0.99968, not 1)."""
    if 0.99 < x < 1.0:
        return f"{x:.6f}".rstrip("0")
    return f"{x:.3g}"


def stream_facts(events: Sequence[Any], now_ms: int | None = None) -> list[str]:
    """Lines for an alert from the live trade stream (events whose ``details["grain"]`` is ``"trades"``).

    What the chunk showed (price move, rush orders against the usual) and, given the wall-clock
    ``now_ms`` of sending, how many seconds after the first abnormal chunk closed the alert went
    out (``details["first_abnormal_close_wall_ms"]``, set when the chunk was scored).
    """
    lines: list[str] = []
    for e in events:
        d = getattr(e, "details", None) or {}
        if d.get("grain") != "trades":
            continue
        facts = []
        if d.get("price_change") is not None:
            facts.append(f"price {float(d['price_change']):+.2%} in {int(d.get('change_seconds', 60))} s")
        if d.get("rush_orders") is not None:
            usual = d.get("rush_multiple")
            tail = f" (×{float(usual):.0f} the usual)" if usual is not None and math.isfinite(float(usual)) else ""
            facts.append(f"{int(d['rush_orders'])} rush orders in {int(d.get('chunk_s', 15))} s{tail}")
        if facts:
            lines.append(" · ".join(facts))
        closed = d.get("first_abnormal_close_wall_ms")
        if now_ms is not None and closed is not None:
            lines.append(
                f"⏱ sent {max(0.0, (now_ms - float(closed)) / 1000):.1f} s after the first abnormal chunk closed"
            )
        break
    return lines


def compose_alert(
    alert: Any, events: Sequence[Any], candles: pd.DataFrame | None = None, *, now_ms: int | None = None
) -> str:
    """The alert message (HTML) for one symbol and bar, listing every detector that fired.

    ``alert`` needs ``exchange, symbol, timeframe, bar_ts, severity``; each event
    ``detector, score, threshold, kind``. ``candles`` (optional) supplies price,
    volume and social-volume context. ``now_ms`` (wall clock at sending, optional) lets a
    stream alert say how fast it was (:func:`stream_facts`).
    """
    esc = html.escape
    sev = str(alert.severity)
    seconds = str(alert.timeframe).endswith("s")  # a trade-stream chunk, not a candle
    when = pd.Timestamp(int(alert.bar_ts), unit="ms", tz="UTC").strftime(
        "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    )
    lines = [
        f"{_SEVERITY_ICON.get(sev, '⚪')} <b>{esc(alert.symbol)}</b> · {esc(alert.exchange)} · "
        f"{esc(alert.timeframe)} — <b>{esc(sev.upper())}</b>",
        f"{'trade chunk' if seconds else 'bar'} {when}",
    ]
    m = alert_metrics(candles, int(alert.bar_ts))
    facts = []
    if not math.isnan(m.price_change):
        facts.append(f"price {m.price_change:+.2%} (close {_fmt_price(m.close)})")
    if not math.isnan(m.volume_multiple):
        facts.append(f"volume ×{m.volume_multiple:.1f}")
    if not math.isnan(m.social_multiple):
        facts.append(f"social ×{m.social_multiple:.1f}")
    if facts:
        lines.append(" · ".join(facts))
    lines += [esc(line) for line in stream_facts(events, now_ms)]
    lines += _group_lines(alert, events)
    for e in sorted(events, key=lambda ev: -(ev.score / ev.threshold if ev.threshold else ev.score)):
        ratio = f" (×{e.score / e.threshold:.1f})" if e.threshold else ""
        kind = "" if e.kind in ("anomaly", "") else f" [{esc(e.kind)}]"
        lines.append(
            f"• {esc(e.detector)}{kind}: score {_fmt_score(e.score)} / threshold {_fmt_score(e.threshold)}{ratio}"
        )
    return "\n".join(lines)


def _group_lines(alert: Any, events: Sequence[Any]) -> list[str]:
    """For an asset-group member: which venue broke away, by how much, from which others."""
    for e in events:
        details = getattr(e, "details", None) or {}
        venues, gap = details.get("venues"), details.get("group_gap")
        if e.kind != "divergence" or not isinstance(venues, dict) or gap is None:
            continue
        own = f"{alert.exchange}:{alert.symbol}"
        others = [k.partition(":")[0] if k.partition(":")[2] == alert.symbol else k for k in venues if k != own]
        venue = html.escape(str(alert.exchange))
        return [
            f"⇄ <b>{venue}</b> broke away from its group: {float(gap):+.2%} vs the median of "
            + html.escape(", ".join(others))
        ]
    return []


def html_to_text(message: str) -> str:
    """The plain text of a composed message (for the console sink and logs)."""
    return html.unescape(re.sub(r"<[^>]+>", "", message))


def encode_callback(action: str, alert_id: int) -> str:
    if action not in CALLBACK_ACTIONS:
        raise ValueError(f"unknown callback action {action!r}")
    return f"{CALLBACK_VERSION}:{action}:{int(alert_id)}"


def decode_callback(data: object) -> tuple[str, int] | None:
    """``(action, alert_id)`` for valid current-version data, else None (old, forged or garbage)."""
    if not isinstance(data, str) or len(data) > 64:
        return None
    match = _CALLBACK_RE.match(data)
    return (match.group(1), int(match.group(2))) if match else None


def alert_keyboard(alert_id: int) -> InlineKeyboardMarkup:
    """Mute 1 h, 7-day chart, backtest, details."""
    buttons = [
        InlineKeyboardButton(label, callback_data=encode_callback(action, alert_id))
        for action, label in CALLBACK_ACTIONS.items()
    ]
    return InlineKeyboardMarkup([buttons[:2], buttons[2:]])
