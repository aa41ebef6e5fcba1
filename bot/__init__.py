"""The application: the ``vigil`` CLI (``bot.cli``), the main job (``bot.runtime``), the Telegram UI
(``bot.telegram``), alert text, charts and delivery (``bot.alerts``), and the service layer the chat and
the CLI share (``bot.service``, ``bot.inputs``).

It stands on the libraries below it (``core``, ``storage``, ``feeds``, ``detectors``, ``backtest``),
which know nothing of Telegram or the CLI.
"""

from __future__ import annotations

__all__: list[str] = []
