"""Alert charts drawn in worker processes, one reused figure template per worker.

Why processes: drawing a chart is CPU work that holds the GIL (matplotlib's Agg
renderer), so threads would draw one chart at a time and slow the event loop that
sends the alert texts. A pool of ``workers`` processes (default: the number of
cores) draws charts side by side while the dispatcher keeps sending.

The workers start from a fresh interpreter (``forkserver``), never as a fork of
the main process: that one has live threads (asyncio, the database pool, maybe
TensorFlow's), and forking a threaded process can deadlock the child. They
import only the chart code. The pool starts on the first chart (or on
:meth:`ChartPool.warm`) and is rebuilt once if a worker dies; after that a chart
is drawn in a thread of this process rather than not at all.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

__all__ = ["ChartPool", "ChartRenderer", "ThreadCharts"]

log = logging.getLogger(__name__)


class ChartRenderer(Protocol):
    async def render(self, candles: pd.DataFrame, events: pd.DataFrame | None, title: str, **venues: Any) -> bytes: ...

    def warm(self) -> None: ...

    def close(self) -> None: ...


def render_with_template(candles: pd.DataFrame, events: pd.DataFrame | None, title: str, **venues: Any) -> bytes:
    """The chart through this thread's template (matplotlib is imported by whoever draws, not at start-up).

    ``venues``/``venue`` (an asset group's closes, and the alerted one) add a panel the template
    does not have: those charts are drawn afresh by ``render_alert_chart``.
    """
    if venues.get("venues") is not None and len(venues["venues"]) > 1:
        from bot.alerts.charts import render_alert_chart

        return render_alert_chart(candles, events=events, title=title, **venues)
    from bot.alerts.chart_template import render_with_template as render

    return render(candles, events, title)


class ThreadCharts:
    """Charts drawn in a thread of this process (tests, and the fallback of :class:`ChartPool`)."""

    async def render(self, candles: pd.DataFrame, events: pd.DataFrame | None, title: str, **venues: Any) -> bytes:
        return await asyncio.to_thread(partial(render_with_template, candles, events, title, **venues))

    def warm(self) -> None:
        """Nothing to start."""

    def close(self) -> None:
        """Nothing to stop."""


def _warm_up() -> int:
    return os.getpid()


def _exit_with(main_pid: int) -> None:
    """Worker initializer: end this worker when the main process is gone.

    A worker blocks on its task queue, and it holds that queue's write end (and the
    forkserver's "alive" pipe) itself, so after a SIGKILL of the main process (a crash,
    the OOM killer) it would never see either close: workers and forkserver would live on,
    holding memory and the main process's stdout and stderr. So each worker checks.
    """

    def watch() -> None:
        while True:
            time.sleep(0.5)
            try:
                os.kill(main_pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid now belongs to another user's process: ours is gone
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-main", daemon=True).start()


def _importable_by_children() -> None:
    """Put the folder holding ``bot`` on the forkserver's path, so workers import this very code.

    Python 3.11's forkserver does not apply the parent's ``sys.path`` (it starts from the
    environment), so code run from a checkout that added itself to ``sys.path`` at run
    time (the benchmarks) would have its workers import another installed copy, or none.
    """
    root = str(Path(__file__).resolve().parents[2])
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([root, *paths])


class ChartPool:
    """A process pool sized to the cores; each worker keeps its own figure templates."""

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._executor: ProcessPoolExecutor | None = None
        self._restarts = 0
        self._fallback = ThreadCharts()

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            _importable_by_children()
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["bot.alerts.chart_template"])  # not __main__: workers import charts only
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=ctx, initializer=_exit_with, initargs=(os.getpid(),)
            )
        return self._executor

    def warm(self) -> None:
        """Start the workers now (each imports matplotlib once) so the first alert's chart does not wait."""
        try:
            pool = self._pool()
            for _ in range(self.workers):
                pool.submit(_warm_up)
        except Exception as err:  # noqa: BLE001 - warming is an optimisation
            log.warning("chart workers could not be started: %s", err)

    async def render(self, candles: pd.DataFrame, events: pd.DataFrame | None, title: str, **venues: Any) -> bytes:
        if self._restarts > 1:
            return await self._fallback.render(candles, events, title, **venues)
        loop = asyncio.get_running_loop()
        try:
            job = partial(render_with_template, candles, events, title, **venues)
            return await loop.run_in_executor(self._pool(), job)
        except BrokenProcessPool as err:
            self._restarts += 1
            log.warning(
                "chart worker died (%s); %s", err, "restarting the pool" if self._restarts < 2 else "drawing in-process"
            )
            self._shutdown()
            return await self.render(candles, events, title, **venues)

    def _shutdown(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self._shutdown()

    def __del__(self) -> None:  # pragma: no cover - interpreter shutdown
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001
            pass
