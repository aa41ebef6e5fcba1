"""The ``models`` table: one row per stored model version, newest active one per (detector, scope).

The files themselves are written by ``detectors.store``; this module only
keeps the registry of versions, so all SQL stays in ``storage``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from storage.models import ModelRecord

__all__ = ["active_model_versions", "latest_model_record", "latest_params", "next_model_version", "register_model"]


def next_model_version(session: Session, detector: str, scope: str) -> int:
    """The version number a new model of ``detector``/``scope`` gets (1 for the first)."""
    current = session.scalar(
        select(func.max(ModelRecord.version)).where(ModelRecord.detector == detector, ModelRecord.scope == scope)
    )
    return (current or 0) + 1


def register_model(
    session: Session,
    *,
    detector: str,
    scope: str,
    version: int,
    path: str,
    params: Mapping[str, Any],
    train_range: tuple[int, int] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> ModelRecord:
    """Record a saved version as the active one; older versions of the same (detector, scope) go inactive."""
    session.execute(
        update(ModelRecord).where(ModelRecord.detector == detector, ModelRecord.scope == scope).values(active=False)
    )
    start, end = train_range or (None, None)
    record = ModelRecord(
        detector=detector,
        scope=scope,
        version=version,
        path=path,
        params=dict(params),
        train_start=start,
        train_end=end,
        metrics=dict(metrics or {}),
        active=True,
    )
    session.add(record)
    session.flush()
    return record


def latest_model_record(session: Session, name: str, scope: str = "shared") -> ModelRecord | None:
    """The newest active ``models`` row of ``name`` for ``scope``."""
    return session.scalars(
        select(ModelRecord)
        .where(ModelRecord.detector == name, ModelRecord.scope == scope, ModelRecord.active.is_(True))
        .order_by(ModelRecord.version.desc())
        .limit(1)
    ).first()


def latest_params(session: Session, name: str, scope: str = "shared") -> dict[str, Any]:
    """The hyper-parameters of the newest version of ``name`` (active or not), or {} when none exists."""
    last = session.scalars(
        select(ModelRecord)
        .where(ModelRecord.detector == name, ModelRecord.scope == scope)
        .order_by(ModelRecord.version.desc())
        .limit(1)
    ).first()
    return dict(last.params) if last is not None else {}


def active_model_versions(session: Session) -> list[dict[str, Any]]:
    """The newest active model of every (detector, scope): ``detector, scope, version``, when it was
    trained (``created_at``) and on which bars (``train_start``/``train_end``, epoch ms or None)."""
    newest = (
        select(ModelRecord.detector, ModelRecord.scope, func.max(ModelRecord.version).label("version"))
        .where(ModelRecord.active.is_(True))
        .group_by(ModelRecord.detector, ModelRecord.scope)
        .subquery()
    )
    rows = session.scalars(
        select(ModelRecord)
        .join(
            newest,
            (ModelRecord.detector == newest.c.detector)
            & (ModelRecord.scope == newest.c.scope)
            & (ModelRecord.version == newest.c.version),
        )
        .order_by(ModelRecord.detector, ModelRecord.scope)
    )
    return [
        {
            "detector": r.detector,
            "scope": r.scope,
            "version": int(r.version),
            "created_at": r.created_at,
            "train_start": r.train_start,
            "train_end": r.train_end,
        }
        for r in rows
    ]
