"""The input of cross-venue detectors: a venue's own candles plus its group's peers as columns.

A detector still scores one frame at a time (the contract of :mod:`detectors.base`), so a
venue's frame carries what the venue alone cannot tell: the closes and volumes of the
other venues of its asset group, aligned on the venue's own bar times, in columns
``close@<peer>`` and ``volume@<peer>`` (``<peer>`` is the runtime's ``exchange:symbol``
key). A bar where a peer has no candle holds NaN there. Frames without peer columns are
simply not part of a group: cross-venue detectors give them no score, other detectors
ignore the extra columns.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["PEER_FIELDS", "attach_peers", "peer_column", "peer_venues", "stack_group"]

PEER_FIELDS = ("close", "volume")
_SEP = "@"


def peer_column(field: str, venue: str) -> str:
    """``close``, ``okx:BTC/USDT`` -> ``close@okx:BTC/USDT``."""
    return f"{field}{_SEP}{venue}"


def peer_venues(frame: pd.DataFrame) -> list[str]:
    """The peers a frame carries (in column order), from its ``close@...`` columns."""
    prefix = f"close{_SEP}"
    return [str(c)[len(prefix) :] for c in frame.columns if isinstance(c, str) and c.startswith(prefix)]


def attach_peers(members: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Each member's frame with every other member's close and volume as peer columns.

    Peers are aligned on the member's own index (no forward fill: a missing bar is NaN, not
    the last price, which would fake a spread). Members keep their own rows and columns.
    """
    out: dict[str, pd.DataFrame] = {}
    for key, frame in members.items():
        extra = {}
        for peer, other in members.items():
            if peer == key:
                continue
            aligned = other.reindex(frame.index)
            for field in PEER_FIELDS:
                extra[peer_column(field, peer)] = aligned[field].to_numpy(dtype="float64")
        out[key] = frame.assign(**extra) if extra else frame.copy()
    return out


def stack_group(
    frame: pd.DataFrame, tail: int | None = None, width: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(closes, volumes), each (rows, venues): the frame's own venue first, then its peers.

    ``width`` pads with NaN venues so frames of different group sizes stack together.
    """
    peers = peer_venues(frame)
    rows = frame if tail is None else frame.iloc[-tail:]
    closes = [rows["close"].to_numpy(dtype="float64")] + [
        rows[peer_column("close", p)].to_numpy(dtype="float64") for p in peers
    ]
    volumes = [rows["volume"].to_numpy(dtype="float64")] + [
        rows[peer_column("volume", p)].to_numpy(dtype="float64") for p in peers
    ]
    c, v = np.stack(closes, axis=1), np.stack(volumes, axis=1)
    if width is not None and width > c.shape[1]:
        pad = np.full((len(rows), width - c.shape[1]), np.nan)
        c, v = np.concatenate([c, pad], axis=1), np.concatenate([v, pad], axis=1)
    return c, v
