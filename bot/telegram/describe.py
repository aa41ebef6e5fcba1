"""Plain-text lines for ``/detectors`` and ``/status``: each detector and the Telegram link as they really are.

Pure functions over the service's report types, so the wording is tested
without a bot.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.reports import DetectorRun, DetectorStatus
from bot.telegram.link import describe_duration

__all__ = ["describe_detector", "describe_link", "describe_run"]


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
