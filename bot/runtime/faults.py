"""Crash points for the restart tests.

``VIGIL_CRASH_AT=<point>`` makes the process kill itself with SIGKILL (no
clean-up, no flush: what a power cut or the OOM killer does) when it reaches
that point of a cycle. The restart tests use it to prove that nothing stored
is lost and no alert is sent twice, whatever point the crash hits. Unset, it
costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["CRASH_POINTS", "crash_point"]

CRASH_POINTS = ("after_candles", "after_scoring", "after_events", "after_first_send")


def crash_point(name: str) -> None:
    if os.environ.get("VIGIL_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
