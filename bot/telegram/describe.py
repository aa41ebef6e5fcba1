"""Plain-text lines for ``/detectors`` and ``/status``: each detector and the Telegram link as they really are.

Pure functions over the service's report types, so the wording is tested
without a bot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.reports import DetectorRun, DetectorStatus, StatusReport
from bot.telegram.link import describe_duration

__all__ = ["describe_detector", "describe_link", "describe_run", "describe_status"]


def _day(ms: int | None) -> str:
    return "?" if ms is None else f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%d}"


def describe_model(model: dict[str, Any]) -> str:
    """``model v2 trained 2026-01-02 03:04 UTC on 2025-12-01 → 2025-12-31``."""
    text = f"model v{model['version']}"
    if model.get("created_at") is not None:
        text += f" trained {model['created_at']:%Y-%m-%d %H:%M} UTC"
    if model.get("train_start") is not None or model.get("train_end") is not None:
        text += f" on {_day(model.get('train_start'))} → {_day(model.get('train_end'))}"
    return text


def describe_run(run: DetectorRun) -> str:
    """What the loop does with one detector: running, waiting, failing."""
    if run.failing:
        when = f" at {run.last_error_at:%H:%M} UTC" if run.last_error_at else ""
        return f"failing{when}: {run.last_error or 'unknown error'}"
    if run.loaded:
        return "running (nothing to train)" if run.version == "untrained" else f"running {run.version}"
    if run.waiting:
        return "waiting for enough history to start"
    return "not started yet (starts at the next cycle)"


def describe_detector(d: DetectorStatus, loop_here: bool) -> str:
    """One ``/detectors`` line: config, chat switches, thresholds, the trained model and what runs."""
    if not d.in_config:
        return f"{d.name}: not in the config (stored events only)"
    if not d.enabled_in_config:
        return f"{d.name}: off in the config"
    parts = [f"{d.name}: {'on' if d.switched_on else 'switched off in chat'}"]
    if d.threshold is not None:
        parts.append(f"threshold {d.threshold:g} (override)")
    parts.extend(d.exceptions)
    if d.run is not None:
        parts.append(describe_run(d.run))
    elif loop_here:
        parts.append("not running")
    if d.model is not None and not (d.run is not None and d.run.version == "untrained"):
        parts.append(describe_model(d.model))
    elif d.model is None and not loop_here:
        parts.append("no trained model stored")
    return ", ".join(parts)


def describe_link(state: Any, now: datetime) -> str:
    """``Telegram: connected; last unreachable for 42 s, until 12:03 UTC`` (a ``bot.telegram.link.LinkState``)."""
    if state.gave_up:
        return f"Telegram: offline, the token was refused ({state.last_error})"
    if not state.up:
        since = f" for {describe_duration(now - state.down_since)}" if state.down_since else ""
        return f"Telegram: unreachable{since} ({state.last_error or 'connecting'})"
    text = "Telegram: connected"
    if state.last_outage is not None:
        start, end = state.last_outage
        text += f"; last unreachable for {describe_duration(end - start)}, until {end:%H:%M} UTC"
    return text


def _ts(ms: int | None) -> str:
    return "never" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float | None) -> str:
    return "no data" if seconds is None else describe_duration(timedelta(seconds=seconds))


def _market_lines(markets: list[dict[str, Any]], onchain: dict[str, list[tuple[str, str, int | None]]]) -> list[str]:
    """One line per market; an asset group's venues (and its on-chain sources) together under the group."""

    def line(m: dict[str, Any], head: str) -> str:
        err = f" — error: {m['last_error'][:100]}" if m["last_error"] else ""
        return f"{head}: last bar {_ts(m['last_ts'])}, lag {_ago(m['lag_s'])}{err}"

    out: list[str] = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in markets:
        if m.get("group"):
            groups.setdefault((m["group"], m["timeframe"]), []).append(m)
        else:
            out.append(line(m, f"• {m['symbol']} {m['timeframe']}"))
    for (group, timeframe), members in sorted(groups.items()):
        members = sorted(members, key=lambda m: (m["exchange"], m["symbol"]))
        out.append(f"Group {group} {timeframe} ({len(members)} venues):")
        out += [line(m, f"  ◦ {m['exchange']} {m['symbol']}") for m in members]
        asset = members[0]["symbol"].partition("/")[0]
        for source, metric, ts in onchain.get(asset, []):
            out.append(f"  ◦ on-chain {metric} ({source}): last value {_ts(ts)}")
    return out


def describe_lag(c: Any) -> str | None:
    """How late a cycle ran after the close of the bar it scored (an overrun shows here first)."""
    if c.until_ms is None or c.started_at is None:
        return None
    from core.timeframes import timeframe_to_ms

    close = c.until_ms / 1000
    started = c.started_at.timestamp() - close
    text = f"Lag: started {_ago(started)} after its bar closed"
    if c.finished_at is not None:
        text += f", results out {_ago(c.finished_at.timestamp() - close)} after"
    if started * 1000 > timeframe_to_ms(c.timeframe):
        text += " (behind: a cycle overran its timeframe; the next one catches up)"
    return text


def describe_status(r: StatusReport) -> list[str]:
    """The ``/status`` lines: the loop, each market's freshness, detectors, Telegram, the outbox."""
    lines = []
    c = r.last_cycle
    if c is None:
        lines.append("Loop: no cycle has run yet.")
    else:
        took = None if c.finished_at is None else (c.finished_at - c.started_at).total_seconds()
        state = "running" if took is None else f"finished in {took:.1f} s"
        if took is not None and c.until_ms is None and c.last_error and c.last_error.startswith("abandoned"):
            state = "abandoned"
        ago = _ago((r.now - c.started_at).total_seconds())
        lines.append(
            f"Loop: last {c.timeframe} cycle {c.started_at:%Y-%m-%d %H:%M} UTC ({ago} ago), "
            f"{state}; {c.symbols} symbols, {c.candles_added} candles, {c.events} events, {c.errors} errors"
        )
        lag = describe_lag(c)
        if lag:
            lines.append(lag)
        if c.last_error:
            lines.append(f"Last error: {c.last_error[:300]}")
    lines.append(f"Last 24 h: {r.cycles_24h} cycles, {r.errors_24h} errors")
    lines += _market_lines(r.markets, r.onchain)
    if r.detectors:
        lines.append("Detectors: " + "; ".join(f"{d.name} {describe_run(d)}" for d in r.detectors))
    elif r.models:
        lines.append("Models: " + ", ".join(f"{m['detector']} ({m['scope']}) v{m['version']}" for m in r.models))
    if r.telegram is not None:
        lines.append(describe_link(r.telegram, r.now))
    if r.deliveries:
        lines.append("Deliveries: " + ", ".join(f"{k} {v}" for k, v in sorted(r.deliveries.items())))
    return lines
