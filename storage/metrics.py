"""Period metrics (on-chain values) out of the shared ``social_points`` table.

On-chain sources store what social sources store (source, symbol, metric, time, value),
with the chain asset (``BTC``) as the symbol. Reading them back differs: values of
different sources are never summed (two providers' active-address counts are two
estimates of one number, not two audiences), so this reads them per source, for many
assets in one query.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.models import SocialPoint

__all__ = ["latest_points", "load_metric_points"]


def load_metric_points(
    session: Session, sources: Sequence[str], assets: Sequence[str], *, start_ms: int, end_ms: int
) -> dict[tuple[str, str], pd.Series]:
    """``(source, asset) -> values`` stamped ``start_ms <= ts < end_ms`` (UTC index); pairs without rows left out."""
    if not sources or not assets:
        return {}
    c = SocialPoint.__table__.c
    rows = session.execute(
        select(c.source, c.symbol, c.ts, c.value)
        .where(c.source.in_(list(sources)), c.symbol.in_(list(assets)), c.ts >= start_ms, c.ts < end_ms)
        .order_by(c.source, c.symbol, c.ts)
    ).all()
    out: dict[tuple[str, str], pd.Series] = {}
    for key in dict.fromkeys((r[0], r[1]) for r in rows):
        mine = [r for r in rows if (r[0], r[1]) == key]
        index = pd.DatetimeIndex(pd.to_datetime([r[2] for r in mine], unit="ms", utc=True), name="time")
        out[key] = pd.Series(np.array([r[3] for r in mine], dtype="float64"), index=index, name=key[0])
    return out


def latest_points(session: Session, sources: Sequence[str], assets: Sequence[str]) -> dict[tuple[str, str], int]:
    """Time (ms) of the newest stored value per (source, asset), for the status report."""
    if not sources or not assets:
        return {}
    c = SocialPoint.__table__.c
    rows = session.execute(
        select(c.source, c.symbol, func.max(c.ts))
        .where(c.source.in_(list(sources)), c.symbol.in_(list(assets)))
        .group_by(c.source, c.symbol)
    ).all()
    return {(str(src), str(sym)): int(ts) for src, sym, ts in rows}
