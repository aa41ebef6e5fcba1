"""The main job: composition (``compose``), the scheduler, one cycle, the detector pool, the demo.

``bot.runtime.compose`` is the one place that builds feeds, detector pool,
dispatcher, service and Telegram application; ``vigil run``, ``vigil demo`` and
the benchmarks all go through it.
"""

from __future__ import annotations

__all__: list[str] = []
