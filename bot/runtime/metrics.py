"""Optional Prometheus metrics: cycle duration, scheduling and data lag, events, deliveries, errors.

``vigil_schedule_lag_seconds`` is how late a cycle started after the close of the bar it
scores (a few seconds normally; a timeframe or more when a cycle overran and the next
one, coalesced, catches up), and ``vigil_cycles_skipped`` counts the runs APScheduler
skipped because the previous cycle was still running.

Metrics live in their own registry so tests (and two runtimes in one process)
do not collide on the global one. Served only when ``metrics.prometheus_port``
is set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics", "start_metrics"]


@dataclass
class Metrics:
    registry: CollectorRegistry
    cycle_seconds: Histogram
    data_lag_seconds: Gauge
    events_total: Counter
    alerts_total: Counter
    errors_total: Counter
    candles_total: Counter
    schedule_lag_seconds: Gauge
    skipped_total: Counter
    server: Any = None

    def observe_cycle(self, report: Any) -> None:
        tf = report.timeframe
        self.cycle_seconds.labels(tf).observe(report.duration_s)
        self.data_lag_seconds.labels(tf).set(max(0.0, time.time() - report.until_ms / 1000))
        self.schedule_lag_seconds.labels(tf).set(report.lag_s)
        self.events_total.labels(tf).inc(report.new_events)
        self.alerts_total.labels(tf).inc(report.alerts)
        self.errors_total.labels(tf).inc(len(report.errors))
        self.candles_total.labels(tf).inc(report.candles_added)

    def skipped(self, timeframe: str) -> None:
        """A scheduled run did not start: the previous cycle of ``timeframe`` was still running."""
        self.skipped_total.labels(timeframe).inc()

    def shutdown(self) -> None:
        if self.server is not None:
            self.server.shutdown()


def make_metrics() -> Metrics:
    reg = CollectorRegistry()
    return Metrics(
        registry=reg,
        cycle_seconds=Histogram(
            "vigil_cycle_seconds",
            "Duration of one fetch-score-alert cycle",
            ["timeframe"],
            registry=reg,
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120),
        ),
        data_lag_seconds=Gauge(
            "vigil_data_lag_seconds", "Age of the newest scored bar close", ["timeframe"], registry=reg
        ),
        events_total=Counter("vigil_events", "Anomaly events stored", ["timeframe"], registry=reg),
        alerts_total=Counter("vigil_alerts", "Alerts queued for delivery", ["timeframe"], registry=reg),
        errors_total=Counter(
            "vigil_cycle_errors", "Per-symbol, per-source and per-detector errors", ["timeframe"], registry=reg
        ),
        candles_total=Counter("vigil_candles", "Candles added", ["timeframe"], registry=reg),
        schedule_lag_seconds=Gauge(
            "vigil_schedule_lag_seconds",
            "Seconds from the close of the newest bar to the start of the cycle scoring it",
            ["timeframe"],
            registry=reg,
        ),
        skipped_total=Counter(
            "vigil_cycles_skipped", "Scheduled cycles skipped while the previous one ran", ["timeframe"], registry=reg
        ),
    )


def start_metrics(port: int, addr: str = "127.0.0.1") -> Metrics:
    metrics = make_metrics()
    server, _thread = start_http_server(port, addr=addr, registry=metrics.registry)
    metrics.server = server
    return metrics
