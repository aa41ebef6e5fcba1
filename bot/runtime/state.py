"""A read-only window on what runs in this process, for the service (and so for chat and CLI).

Handlers must not reach into the runtime: they ask :class:`bot.service.BotService`,
which asks this view, handed to it by ``bot.runtime.compose``. It answers
from the detector pool (which detectors are loaded, which fail) and from
the Telegram link (whether the Bot API answers, how long it was away).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.reports import DetectorRun

if TYPE_CHECKING:
    from bot.runtime.detector_pool import DetectorPool

__all__ = ["SystemView"]


class SystemView:
    """Detector runs and Telegram reachability, as of now."""

    def __init__(self, pool: DetectorPool, link: Any = None) -> None:
        self.pool = pool
        self.link = link  # bot.telegram.link.TelegramLink, set once the application is built

    def detector_runs(self) -> list[DetectorRun]:
        return self.pool.runs()

    def telegram(self) -> Any:
        """``bot.telegram.link.LinkState``, or None when this process does not run the bot."""
        return self.link.state() if self.link is not None else None
