"""Many symbols' rows in one query: what a cycle reads for every watched symbol at once.

Per-symbol queries cost a round trip and a frame build each; at hundreds of
symbols that costs more than scoring them. One ``IN`` query per chunk of
names, ordered by name, is split into per-name float blocks with numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

__all__ = ["grouped_rows"]


def grouped_rows(
    session: Session, names: Sequence[str], query_for: Callable[[list[str]], Any], chunk: int = 500
) -> Iterator[tuple[str, np.ndarray]]:
    """``(name, block)`` for every name that has rows, ``block`` of shape (rows, columns - 1), float64.

    ``query_for(part)`` returns a select whose first column is the name and
    whose other columns are numeric, ordered by name (then by time).
    """
    names = sorted(set(names))
    for first in range(0, len(names), chunk):
        rows = session.execute(query_for(names[first : first + chunk])).all()
        if not rows:
            continue
        owners = np.array([r[0] for r in rows], dtype=object)
        values = np.array([tuple(r)[1:] for r in rows], dtype="float64")
        starts = np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])
        for a, b in zip(starts, np.r_[starts[1:], len(rows)], strict=True):
            yield str(owners[a]), values[a:b]
