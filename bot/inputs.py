"""Parsing of hostile input: chat arguments and CLI arguments become typed values or an InputError.

Everything a user types is checked here once, with caps on length and range,
so the service layer only ever sees sane values. Each error names the
offending value and says what would have been accepted.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta

from bot.masking import mask
from core.errors import InputError
from core.timeframes import timeframe_to_ms

__all__ = [
    "MAX_ARG_LEN",
    "parse_count",
    "parse_detector",
    "parse_duration",
    "parse_exchange",
    "parse_exchanges",
    "parse_symbol",
    "parse_threshold_value",
    "parse_timeframe",
    "split_args",
]

MAX_ARG_LEN = 32
MIN_THRESHOLD = 1e-6
MAX_ARGS = 6
MAX_TEXT_LEN = 200
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{1,20}/[A-Z0-9]{1,20}(:[A-Z0-9]{1,20})?$")
_DETECTOR_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_EXCHANGE_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # ccxt exchange ids: binance, coinbaseexchange, gate_io
_DURATION_RE = re.compile(r"^([1-9][0-9]{0,4})([mhdw])$")
_DURATION_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _shown(raw: str) -> str:
    """The offending value as errors quote it: secrets masked first (a cut token no longer looks like one)."""
    raw = mask(raw)
    return repr(raw if len(raw) <= MAX_ARG_LEN else raw[:MAX_ARG_LEN] + "…")


def split_args(text: str | None) -> list[str]:
    """Whitespace-split arguments after the command, refusing oversized input."""
    if not text:
        return []
    if len(text) > MAX_TEXT_LEN:
        raise InputError(f"message too long ({len(text)} characters; at most {MAX_TEXT_LEN})")
    args = text.split()[1:]
    if len(args) > MAX_ARGS:
        raise InputError(f"too many arguments ({len(args)}; at most {MAX_ARGS})")
    for arg in args:
        if len(arg) > MAX_ARG_LEN:
            raise InputError(f"argument {_shown(arg)} is too long (at most {MAX_ARG_LEN} characters)")
    return args


def parse_symbol(raw: str) -> str:
    """``btc/usdt`` or ``BTC-USDT`` -> ``BTC/USDT``; anything else is refused."""
    value = raw.strip().upper().replace("-", "/")
    if not _SYMBOL_RE.match(value):
        raise InputError(f"bad symbol {_shown(raw)}: expected BASE/QUOTE such as BTC/USDT")
    return value


def parse_exchange(raw: str) -> str:
    """A ccxt-style exchange id (``binance``, ``kraken``): lower-case letters, digits and ``_``."""
    value = raw.strip().lower()
    if not _EXCHANGE_RE.match(value):
        raise InputError(f"bad exchange id {_shown(raw)}: expected a ccxt exchange id such as binance or kraken")
    return value


MAX_VENUES = 8


def parse_exchanges(raw: str) -> list[str]:
    """``binance,okx,kraken`` -> the exchange names of an asset group (2..8, distinct)."""
    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    bad = [n for n in names if not _EXCHANGE_RE.match(n)]
    if bad:
        raise InputError(f"bad exchange name {_shown(bad[0])}: lower-case letters, digits and _")
    if len(names) != len(set(names)):
        raise InputError(f"exchanges {_shown(raw)}: each exchange once")
    if not 2 <= len(names) <= MAX_VENUES:
        raise InputError(f"exchanges {_shown(raw)}: a group needs 2 to {MAX_VENUES} exchanges, comma-separated")
    return names


def parse_timeframe(raw: str) -> str:
    value = raw.strip()
    try:
        ms = timeframe_to_ms(value)
    except ValueError:
        raise InputError(f"bad timeframe {_shown(raw)}: expected e.g. 1m, 15m, 1h, 4h, 1d") from None
    if ms > timeframe_to_ms("1w"):
        raise InputError(f"bad timeframe {_shown(raw)}: at most 1w")
    return value


def parse_duration(raw: str, *, maximum: timedelta = timedelta(days=30)) -> timedelta:
    """``30m``, ``2h``, ``7d``, ``1w`` -> timedelta, capped at ``maximum``."""
    match = _DURATION_RE.match(raw.strip().lower())
    if not match:
        raise InputError(f"bad duration {_shown(raw)}: expected a number and m, h, d or w (e.g. 30m, 2h, 7d)")
    value = timedelta(seconds=int(match.group(1)) * _DURATION_UNIT[match.group(2)])
    if value > maximum:
        raise InputError(f"duration {_shown(raw)} is too long (at most {maximum.days} days)")
    return value


def parse_detector(raw: str, known: list[str] | None = None) -> str:
    value = raw.strip().lower()
    if not _DETECTOR_RE.match(value):
        raise InputError(f"bad detector name {_shown(raw)}: lower-case letters, digits and _")
    if known and value not in known:
        raise InputError(f"unknown detector {_shown(raw)}; known: {', '.join(known)}")
    return value


def parse_threshold_value(raw: str, *, low: float = MIN_THRESHOLD, high: float = 1e6) -> float:
    """A finite number in ``[low, high]``.

    The floor is not 0: a threshold of ``1e-320`` (a subnormal float) passed a ``> 0`` check,
    was stored, and made every score an alarm on one database and none on another. No detector's
    score scale (z-scores, errors, probabilities) has a meaningful threshold below 1e-6.
    """
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"bad threshold {_shown(raw)}: expected a number") from None
    if not math.isfinite(value) or not (low <= value <= high):
        raise InputError(f"threshold {_shown(raw)} out of range: expected {low:g} <= value <= {high:g}")
    return value


def parse_count(raw: str, *, low: int = 1, high: int = 50) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InputError(f"bad count {_shown(raw)}: expected a whole number") from None
    if not low <= value <= high:
        raise InputError(f"count {value} out of range: {low}..{high}")
    return value
