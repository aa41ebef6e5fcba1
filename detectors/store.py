"""The model store: versioned model directories on disk, one ``models`` row per version (``storage.model_records``).

Layout: ``<root>/<detector>/<scope>/v<version>/`` holding ``model.keras`` (neural
detectors) and ``metadata.json`` (detector, parameters, feature scaling, threshold
state, training range). Saving a new version deactivates the older ones of the same
(detector, scope); loading takes the newest active one. Old files are never deleted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from core.errors import DetectorError
from detectors.base import Detector
from storage.model_records import latest_model_record, latest_params, next_model_version, register_model
from storage.models import ModelRecord

__all__ = ["latest_model_record", "load_latest_model", "retrain", "save_model"]

log = logging.getLogger(__name__)


def _slug(scope: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", scope)


def save_model(
    session: Session,
    detector: Detector,
    *,
    scope: str = "shared",
    root: str | Path = "models",
    metrics: Mapping[str, Any] | None = None,
) -> ModelRecord:
    """Write the fitted detector to a new version directory and register it (active)."""
    version = next_model_version(session, detector.name, scope)
    path = Path(root) / detector.name / _slug(scope) / f"v{version}"
    if path.exists():
        raise DetectorError(f"model directory {path} already exists; refusing to overwrite it")
    detector.save(path)
    record = register_model(
        session,
        detector=detector.name,
        scope=scope,
        version=version,
        path=str(path),
        params=detector.params,
        train_range=getattr(detector, "train_range_", None),
        metrics=metrics,
    )
    log.info("saved %s scope=%s version %d at %s", detector.name, scope, version, path)
    return record


def load_latest_model(session: Session, name: str, scope: str = "shared") -> Detector | None:
    """The newest active model of ``name`` for ``scope``, or None when none was trained."""
    record = latest_model_record(session, name, scope)
    if record is None:
        return None
    from detectors.registry import get_detector_class

    return get_detector_class(record.detector).load(record.path)


def retrain(
    session_factory: Callable[[], Any],
    name: str,
    frames: pd.DataFrame | Mapping[str, pd.DataFrame],
    *,
    scope: str = "shared",
    root: str | Path = "models",
    params: Mapping[str, Any] | None = None,
    callbacks: list[Any] | None = None,
) -> ModelRecord:
    """Fit a fresh ``name`` detector on ``frames`` and store it as the next version (scheduler entry point).

    Parameters default to those of the latest stored version, so a retrain keeps what
    was configured. Fitting happens outside any transaction; only the save is in one.
    """
    from detectors.registry import create_detector

    if params is None:
        with session_factory() as session:
            params = latest_params(session, name, scope)
    detector = create_detector(name, **dict(params))
    detector.fit(frames, callbacks=callbacks)
    with session_factory() as session, session.begin():
        record = save_model(session, detector, scope=scope, root=root)
    return record
