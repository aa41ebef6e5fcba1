"""Every ``vigil`` command: one typer module per area, wired together in :mod:`bot.cli.root`.

Heavy libraries (TensorFlow, vectorbt, ccxt) are imported inside command bodies,
so ``vigil --help`` answers without loading them.
"""

from __future__ import annotations

from bot.cli.root import app, main

__all__ = ["app", "main"]
