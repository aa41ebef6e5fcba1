"""Timeframe strings ("1m", "4h", "1d") and their lengths.

Kept free of ccxt so that config validation and storage do not pay for
importing it. The unit letters follow ccxt's ``parse_timeframe``.
"""

from __future__ import annotations

import re

__all__ = ["align_down", "timeframe_to_ms"]

_UNITS_MS = {
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 7 * 86_400_000,
}
_PATTERN = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def timeframe_to_ms(timeframe: str) -> int:
    """Length of one bar of ``timeframe`` in milliseconds.

    Raises ``ValueError`` naming the bad value, so callers can add the key.
    """
    match = _PATTERN.match(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        raise ValueError(
            f"bad timeframe {timeframe!r}: expected a number and a unit "
            "among s, m, h, d, w (e.g. '1m', '15m', '1h', '1d')"
        )
    return int(match.group(1)) * _UNITS_MS[match.group(2)]


def align_down(ts_ms: int, timeframe: str) -> int:
    """Open time of the bar of ``timeframe`` that contains ``ts_ms``."""
    step = timeframe_to_ms(timeframe)
    return ts_ms - ts_ms % step
