"""The fixed split of the shared real-candle files into a tuning part and a held-out part.

Fixed (and committed) before any alert rate was measured per part, so a threshold chosen on
the tuning files can be judged on files it never saw: within each timeframe the files are
ordered by the SHA-256 of ``SPLIT_SALT + file name`` and alternate between the parts, the
first going to tuning (the NAB split's rule, :mod:`detectors.nab_split`, with its own salt).
It depends on file names only. With ``../shared/data/candles`` it gives, on 5-minute bars,
6 tuning and 5 held-out files; on hourly bars 4 and 3.

The parts differ by coin, not by time: the 5-minute files all cover the same 20 days of
January 2018, so a held-out rate says how a threshold carries over to other coins in the
same market, not to another market regime.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from detectors.nab_split import HELDOUT, TUNING

__all__ = ["HELDOUT", "SPLIT_SALT", "TUNING", "candle_split"]

SPLIT_SALT = "vigil-candle-split-v1:"


def _rank_key(name: str) -> str:
    return hashlib.sha256((SPLIT_SALT + name).encode("utf-8")).hexdigest()


def candle_split(names: Iterable[str]) -> dict[str, str]:
    """File name (``ADA_BTC-5m.csv``) -> ``"tuning"`` | ``"heldout"``, stratified by the ``-<timeframe>`` suffix."""
    by_timeframe: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        timeframe = name.rsplit("-", 1)[-1].removesuffix(".csv") if "-" in name else ""
        by_timeframe.setdefault(timeframe, []).append(name)
    out: dict[str, str] = {}
    for members in by_timeframe.values():
        for rank, name in enumerate(sorted(members, key=_rank_key)):
            out[name] = TUNING if rank % 2 == 0 else HELDOUT
    return out
