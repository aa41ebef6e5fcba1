"""A cycle that runs late shows in the Prometheus metrics (and /status, see test_bot_commands)."""

from __future__ import annotations

from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from prometheus_client import generate_latest

from bot.runtime.cycle import CycleReport
from bot.runtime.metrics import make_metrics
from bot.runtime.scheduler import MainJob
from core.config import default_config

HOUR = 3_600_000


def _value(metrics, name: str, timeframe: str) -> float:
    return float(metrics.registry.get_sample_value(name, {"timeframe": timeframe}) or 0.0)


def test_schedule_lag_is_the_delay_from_bar_close_to_cycle_start() -> None:
    metrics = make_metrics()
    close = 1_700_000_000_000 - 1_700_000_000_000 % HOUR
    metrics.observe_cycle(CycleReport(timeframe="1h", until_ms=close, started_ms=close + 5_000))
    assert _value(metrics, "vigil_schedule_lag_seconds", "1h") == 5.0
    # a cycle that overran: the coalesced next run starts more than a timeframe after its bar closed
    metrics.observe_cycle(CycleReport(timeframe="1h", until_ms=close + HOUR, started_ms=close + 2 * HOUR + 90_000))
    assert _value(metrics, "vigil_schedule_lag_seconds", "1h") == 3690.0
    assert b"vigil_schedule_lag_seconds" in generate_latest(metrics.registry)


def test_a_run_skipped_because_the_cycle_still_ran_is_counted() -> None:
    job = MainJob(default_config())
    job.metrics = make_metrics()
    now = datetime.now(UTC)
    job._skipped(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "cycle:1m", None, [now]))
    job._skipped(JobSubmissionEvent(EVENT_JOB_MAX_INSTANCES, "retrain", None, [now]))  # not a cycle
    assert _value(job.metrics, "vigil_cycles_skipped_total", "1m") == 1.0
    assert _value(job.metrics, "vigil_cycles_skipped_total", "1h") == 0.0
