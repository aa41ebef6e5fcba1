"""The floor every package stands on: config, the error tree, timeframes, strict CSV reading.

Imports nothing else of vigil's.
"""

from __future__ import annotations

__all__: list[str] = []
