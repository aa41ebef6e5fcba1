"""Planting labelled anomalies and data faults into the synthetic market.

The base process (:mod:`feeds.synthetic`) produces per-bar log returns, a
volume multiplier and a social-intensity multiplier as ``(n_bars,
n_symbols)`` arrays. This module decides *where* anomalies go
(:func:`plan_anomalies`) and edits those arrays in place
(:func:`apply_market_anomalies`), so every anomaly is a change to the same
quantities the normal process drives: a pump really moves the close, which
really moves the next bar's open. Faults (gaps, stale candles) are applied
later, on the finished OHLCV arrays (:func:`apply_stale`, gap masks).

Placement rules that detectors and tests rely on:

* nothing starts in the first 20 % of a series (detectors train there);
* anomalies never overlap: the eligible span is cut into equal slots and each
  anomaly sits inside its own slot with a free bar on both sides;
* magnitudes are drawn in percent but never below a few per-bar standard
  deviations, so a pump on daily candles is still anomalous while a pump on
  minute candles keeps the +10..40 % seen in real pump-and-dump groups.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "ALL_KINDS",
    "FAULT_KINDS",
    "MARKET_KINDS",
    "PlannedAnomaly",
    "apply_market_anomalies",
    "apply_stale",
    "default_anomaly_rate",
    "gap_mask",
    "plan_anomalies",
]

MARKET_KINDS: tuple[str, ...] = ("pump_dump", "flash_crash", "volume_spike", "level_shift")
FAULT_KINDS: tuple[str, ...] = ("gap", "stale")
ALL_KINDS: tuple[str, ...] = MARKET_KINDS + FAULT_KINDS

TRAIN_FRACTION = 0.2  # no anomaly starts before this fraction of the series
_MAX_LEN = 14  # longest anomaly in bars (pump_dump: lead 3 + pump 4 + dump 6, plus slack)
_MARGIN = 1  # free bars kept around every anomaly


@dataclass(frozen=True)
class PlannedAnomaly:
    """One anomaly: symbol column, first and last bar (inclusive) and its shape parameters."""

    column: int
    kind: str
    start: int
    end: int
    params: dict[str, float]


def default_anomaly_rate(eligible_bars: int) -> float:
    """Anomalies per eligible bar when the caller does not choose.

    One per 300 bars, but at least two expected per symbol so that short
    daily series still carry something to find.
    """
    return max(1.0 / 300.0, 2.0 / max(eligible_bars, 1))


def _draw_shape(rng: np.random.Generator, kind: str, sigma: float) -> tuple[int, dict[str, float]]:
    """Length in bars and shape parameters of one anomaly (log-return units)."""
    if kind == "pump_dump":
        lead, pump, dump = int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(2, 7))
        size = min(max(rng.uniform(0.10, 0.40), rng.uniform(5, 8) * sigma * np.sqrt(pump)), 0.8)
        return lead + pump + dump, {
            "lead": lead,
            "pump": pump,
            "dump": dump,
            "rise": float(np.log1p(size)),
            "give_back": rng.uniform(0.7, 1.0),
            "volume_x": rng.uniform(5, 30),
            "social_x": rng.uniform(5, 20),
        }
    if kind == "flash_crash":
        recover = int(rng.integers(1, 4))
        drop = min(max(rng.uniform(0.08, 0.25), rng.uniform(3, 5) * sigma), 0.4)
        return 1 + recover, {
            "recover": recover,
            "fall": float(-np.log1p(-drop)),
            "recovered": rng.uniform(0.4, 0.8),
            "volume_x": rng.uniform(5, 15),
        }
    if kind == "volume_spike":
        return int(rng.integers(1, 4)), {"volume_x": rng.uniform(5, 20)}
    if kind == "level_shift":
        size = min(max(rng.uniform(0.05, 0.15), rng.uniform(3, 5) * sigma), 0.4)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        return 1, {"jump": sign * float(np.log1p(size)), "volume_x": rng.uniform(1.5, 3)}
    if kind == "gap":
        return int(rng.integers(1, 13)), {}
    if kind == "stale":
        return int(rng.integers(3, 11)), {}
    raise ValueError(f"unknown anomaly kind {kind!r}")


def plan_anomalies(
    rng: np.random.Generator,
    n_bars: int,
    sigma_bar: np.ndarray,
    kinds: tuple[str, ...],
    rate: float | None,
) -> list[PlannedAnomaly]:
    """Choose non-overlapping anomalies for every symbol column.

    Parameters
    ----------
    n_bars : number of bars per symbol.
    sigma_bar : shape (n_symbols,), the normal per-bar return stdev of each symbol.
    kinds : kinds to draw from (uniformly).
    rate : expected anomalies per eligible bar, or None for :func:`default_anomaly_rate`.
    """
    first = int(np.ceil(TRAIN_FRACTION * n_bars)) + _MARGIN
    eligible = n_bars - first - _MARGIN
    planned: list[PlannedAnomaly] = []
    if not kinds or eligible < _MAX_LEN + 2 * _MARGIN:
        return planned
    rate = default_anomaly_rate(eligible) if rate is None else rate
    max_slots = eligible // (_MAX_LEN + 2 * _MARGIN)
    counts = np.minimum(rng.poisson(rate * eligible, size=len(sigma_bar)), max_slots)
    for col, count in enumerate(counts):
        if count == 0:
            continue
        width = eligible // count
        for slot in range(count):
            kind = kinds[int(rng.integers(len(kinds)))]
            length, params = _draw_shape(rng, kind, float(sigma_bar[col]))
            room = width - length - 2 * _MARGIN
            start = first + slot * width + _MARGIN + int(rng.integers(0, room + 1))
            planned.append(PlannedAnomaly(col, kind, start, start + length - 1, params))
    return planned


def apply_market_anomalies(
    planned: list[PlannedAnomaly],
    ret: np.ndarray,
    jump: np.ndarray,
    vol_x: np.ndarray,
    social_x: np.ndarray,
    wick_x: np.ndarray,
) -> None:
    """Edit the base arrays (all shape (n_bars, n_symbols)) in place for market anomalies.

    ``ret`` is the close-over-open log return, ``jump`` the open-over-previous-
    close log gap (non-zero only at level shifts), ``vol_x``/``social_x``
    multiply volume and social intensity, ``wick_x`` widens the intra-bar
    range. Fault kinds are skipped here.
    """
    for a in planned:
        c, s, p = a.column, a.start, a.params
        if a.kind == "pump_dump":
            lead, pump, dump = int(p["lead"]), int(p["pump"]), int(p["dump"])
            top = s + lead  # first price-spike bar; the social burst started `lead` bars earlier
            burst = np.concatenate([np.full(lead + pump, p["social_x"]), np.linspace(p["social_x"], 1.0, dump + 1)[1:]])
            social_x[s : a.end + 1, c] *= burst
            ret[top : top + pump, c] = p["rise"] / pump + 0.3 * ret[top : top + pump, c]
            ret[top + pump : a.end + 1, c] = -p["rise"] * p["give_back"] / dump + 0.3 * ret[top + pump : a.end + 1, c]
            vol_x[top : top + pump, c] *= p["volume_x"]
            vol_x[top + pump : a.end + 1, c] *= np.linspace(p["volume_x"] / 2, 2.0, dump)
            vol_x[s:top, c] *= 1.5  # early buyers
            wick_x[top : a.end + 1, c] = 2.0
        elif a.kind == "flash_crash":
            rec = int(p["recover"])
            ret[s, c] = -p["fall"]
            ret[s + 1 : a.end + 1, c] = p["fall"] * p["recovered"] / rec
            vol_x[s, c] *= p["volume_x"]
            vol_x[s + 1 : a.end + 1, c] *= np.linspace(p["volume_x"] / 2, 2.0, rec)
            social_x[s : a.end + 1, c] *= 3.0
            wick_x[s : a.end + 1, c] = 2.5
        elif a.kind == "volume_spike":
            vol_x[s : a.end + 1, c] *= p["volume_x"]
        elif a.kind == "level_shift":
            jump[s, c] += p["jump"]
            vol_x[s, c] *= p["volume_x"]
            social_x[s, c] *= 2.0


def apply_stale(planned: list[PlannedAnomaly], ohlcv: list[np.ndarray]) -> None:
    """Repeat the last good candle over every stale run (arrays (n_bars, n_symbols), in place)."""
    for a in planned:
        if a.kind == "stale":
            for arr in ohlcv:
                arr[a.start : a.end + 1, a.column] = arr[a.start - 1, a.column]


def gap_mask(planned: list[PlannedAnomaly], n_bars: int, n_symbols: int) -> np.ndarray:
    """Boolean (n_bars, n_symbols): True where a row is kept (False inside gaps)."""
    keep = np.ones((n_bars, n_symbols), dtype=bool)
    for a in planned:
        if a.kind == "gap":
            keep[a.start : a.end + 1, a.column] = False
    return keep
