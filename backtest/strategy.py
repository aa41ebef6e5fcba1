"""Strategies as small declarative objects.

A strategy says *when* to trade on events (which detector, how anomalous,
which symbols), *which way* (long or short) and *how to get out* (time stop,
take-profit, stop-loss, trailing stop), plus the cost model (fees, slippage)
and sizing. It holds no code that looks at prices: the simulation kernel
(:mod:`backtest.kernel`) interprets it, so every strategy gets the same
no-look-ahead guarantees for free.

Built-ins live in :data:`STRATEGIES`; ``fixed_hold`` is the reference that
other tools rely on (enter at the open after the event bar, exit ``hold_bars``
bars later at the open).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.errors import InputError
from storage.models import SEVERITY_RANK

__all__ = [
    "STRATEGIES",
    "Strategy",
    "available_strategies",
    "make_strategy",
    "parse_param_args",
]

_SEVERITY_RANK = SEVERITY_RANK  # the one order of severities (storage.models)


@dataclass(frozen=True)
class Strategy:
    """Declarative event strategy; every price rule is a fraction of the entry fill.

    Attributes
    ----------
    name : str
        Label shown in reports.
    detector : str | None
        Only events from this detector trigger (None: any).
    min_score : float | None
        Only events with ``score >= min_score`` trigger.
    min_severity : str | None
        Only events at least this severe (``low`` < ``medium`` < ``high``).
    symbols : tuple[str, ...] | None
        Only these symbols trade (None: every symbol with candles).
    direction : str
        ``long``, ``short``, or ``against``: per event, against the market's move at the
        event (short after a rise, long after a fall; the event's ``move``), which is how
        a venue that broke away from its group is faded.
    hold_bars : int
        Time stop: exit at the open of ``entry_bar + hold_bars`` (0: no time stop).
    take_profit, stop_loss, trailing_stop : float | None
        Fractions of the entry price (0.05 = 5 %); None disables the rule.
        Stops are watched from the bar after the entry bar on.
    fees : float
        Fraction of each fill's notional.
    slippage : float
        Fraction added to (buys) or taken from (sells) each fill price.
    size : float
        Fraction of the column's cash committed per trade (1.0 = all in).
    init_cash : float
        Starting cash per symbol column.
    """

    name: str = "fixed_hold"
    detector: str | None = None
    min_score: float | None = None
    min_severity: str | None = None
    symbols: tuple[str, ...] | None = None
    direction: str = "long"
    hold_bars: int = 24
    take_profit: float | None = None
    stop_loss: float | None = None
    trailing_stop: float | None = None
    fees: float = 0.001
    slippage: float = 0.0005
    size: float = 1.0
    init_cash: float = 10_000.0

    def __post_init__(self) -> None:
        def bad(key: str, why: str) -> InputError:
            return InputError(f"strategy {self.name!r}: {key}={getattr(self, key)!r}: {why}")

        if self.direction not in ("long", "short", "against"):
            raise bad("direction", "expected 'long', 'short' or 'against'")
        if not isinstance(self.hold_bars, int) or self.hold_bars < 0:
            raise bad("hold_bars", "expected an integer >= 0")
        if self.hold_bars == 0 and self.take_profit is None and self.stop_loss is None and self.trailing_stop is None:
            raise bad("hold_bars", "0 needs an exit rule (take_profit, stop_loss or trailing_stop)")
        for key in ("take_profit", "stop_loss", "trailing_stop"):
            value = getattr(self, key)
            if value is not None and not (0 < value < 1 or (key == "take_profit" and value > 0)):
                raise bad(key, "expected a fraction > 0 (0.05 means 5 %)")
        if not 0 <= self.fees < 0.1:
            raise bad("fees", "expected a fraction in [0, 0.1)")
        if not 0 <= self.slippage < 0.1:
            raise bad("slippage", "expected a fraction in [0, 0.1)")
        if not 0 < self.size <= 1:
            raise bad("size", "expected a fraction of cash in (0, 1]")
        if not self.init_cash > 0:
            raise bad("init_cash", "expected > 0")
        if self.min_severity is not None and self.min_severity not in _SEVERITY_RANK:
            raise bad("min_severity", f"expected one of {', '.join(_SEVERITY_RANK)}")
        if self.min_score is not None and not math.isfinite(self.min_score):
            raise bad("min_score", "expected a finite number")

    @property
    def short(self) -> bool:
        return self.direction == "short"

    def params(self) -> dict[str, Any]:
        """The settable fields and their values (for JSON reports)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if out["symbols"] is not None:
            out["symbols"] = list(out["symbols"])
        return out

    def replace(self, **changes: Any) -> Strategy:
        return dataclasses.replace(self, **changes)


STRATEGIES: dict[str, Strategy] = {
    # Reference semantics other tools depend on: time stop only.
    "fixed_hold": Strategy(name="fixed_hold"),
    # Event breakout with a bracket: 3 % take-profit, 1.5 % stop-loss, 48-bar time stop.
    "bracket": Strategy(name="bracket", hold_bars=48, take_profit=0.03, stop_loss=0.015),
    # Ride the move with a 2 % trailing stop, give up after a week of hourly bars.
    "trailing": Strategy(name="trailing", hold_bars=168, trailing_stop=0.02),
    # Fade the anomaly: short after the event, bracketed.
    "fade": Strategy(name="fade", direction="short", hold_bars=12, take_profit=0.02, stop_loss=0.02),
    # Fade a venue that broke away from its asset group: trade it back towards the others.
    "fade_venue": Strategy(
        name="fade_venue", detector="divergence", direction="against", hold_bars=6, take_profit=0.02, stop_loss=0.03
    ),
}


def available_strategies() -> list[str]:
    return sorted(STRATEGIES)


_FIELD_TYPES: dict[str, type] = {
    "detector": str,
    "min_score": float,
    "min_severity": str,
    "symbols": tuple,
    "direction": str,
    "hold_bars": int,
    "take_profit": float,
    "stop_loss": float,
    "trailing_stop": float,
    "fees": float,
    "slippage": float,
    "size": float,
    "init_cash": float,
}
_NULLABLE = {"detector", "min_score", "min_severity", "symbols", "take_profit", "stop_loss", "trailing_stop"}


def _coerce(strategy: str, key: str, raw: Any) -> Any:
    """Turn a CLI/chat string (or a typed value) into the field's type, naming the value on failure."""
    if key not in _FIELD_TYPES:
        raise InputError(f"strategy {strategy!r}: unknown parameter {key!r}; valid: {', '.join(sorted(_FIELD_TYPES))}")
    kind = _FIELD_TYPES[key]
    if isinstance(raw, str) and key in _NULLABLE and raw.strip().lower() in ("", "none", "off"):
        return None
    try:
        if kind is int:
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError
            return int(raw) if not isinstance(raw, str) else int(raw.strip())
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError
            return value
        if kind is tuple:
            items = raw.split(",") if isinstance(raw, str) else list(raw)
            return tuple(s.strip().upper() for s in items if s.strip())
        if not isinstance(raw, str):
            raise ValueError
        return raw.strip().lower() if key in ("direction", "min_severity") else raw.strip()
    except (TypeError, ValueError):
        expected = {int: "an integer", float: "a number", tuple: "a comma-separated list", str: "text"}[kind]
        raise InputError(f"strategy {strategy!r}: {key}={raw!r}: expected {expected}") from None


def make_strategy(name: str = "fixed_hold", params: Mapping[str, Any] | None = None) -> Strategy:
    """A built-in strategy with some fields overridden; unknown names/keys raise ``InputError``."""
    if name not in STRATEGIES:
        raise InputError(f"unknown strategy {name!r}; available: {', '.join(available_strategies())}")
    changes = {key: _coerce(name, key, value) for key, value in (params or {}).items()}
    return STRATEGIES[name].replace(**changes)


def parse_param_args(items: Sequence[str]) -> dict[str, str]:
    """``["hold_bars=12", "fees=0"]`` -> ``{"hold_bars": "12", "fees": "0"}``."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--param {item!r}: expected key=value")
        out[key.strip()] = value
    return out
