"""The model store: versioned model directories on disk, one ``models`` row per version (``storage.model_records``).

Layout: ``<root>/<detector>/<scope>/v<version>/`` holding ``model.keras`` (neural
detectors) and ``metadata.json`` (detector, parameters, feature scaling, threshold
state, training range). Saving a new version deactivates the older ones of the same
(detector, scope); loading takes the newest active one. Old files are never deleted.

``root`` is the config's ``paths.models_dir``. The database stores each version's
folder relative to it (``pump_dump/shared/v1``), so the same database finds its
models from any working directory and on any host that mounts the folder, wherever
it is mounted. :func:`model_path` also finds rows written by older versions, which
stored the folder relative to the working directory of the process that trained it.
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

__all__ = ["latest_model_record", "load_latest_model", "model_path", "retrain", "save_model"]

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
    """Write the fitted detector to a new version directory and register it (active), its path relative to ``root``."""
    version = next_model_version(session, detector.name, scope)
    relative = Path(detector.name) / _slug(scope) / f"v{version}"
    path = Path(root).expanduser().absolute() / relative
    if path.exists():
        raise DetectorError(f"model directory {path} already exists; refusing to overwrite it")
    detector.save(path)
    record = register_model(
        session,
        detector=detector.name,
        scope=scope,
        version=version,
        path=relative.as_posix(),
        params=detector.params,
        train_range=getattr(detector, "train_range_", None),
        metrics=metrics,
    )
    log.info("saved %s scope=%s version %d at %s", detector.name, scope, version, path)
    return record


def model_path(record: ModelRecord, root: str | Path) -> Path:
    """The folder of a stored version, under ``root`` (``paths.models_dir``) from any working directory.

    Tried in order: the stored path itself when absolute; relative to ``root`` (how
    rows are written now); relative to the working directory (rows of older versions);
    and ``root/<detector>/<scope>/v<version>``, the layout, for a folder that moved.
    """
    root = Path(root).expanduser().absolute()
    stored = Path(record.path)
    candidates = [stored] if stored.is_absolute() else [root / stored, stored.absolute()]
    candidates.append(root / record.detector / _slug(record.scope) / f"v{record.version}")
    for candidate in dict.fromkeys(candidates):
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in dict.fromkeys(candidates))
    raise DetectorError(
        f"model files of {record.detector} v{record.version} ({record.scope}) not found (looked in {looked}); "
        "set paths.models_dir or VIGIL_MODELS_DIR to the folder that holds them"
    )


def load_latest_model(session: Session, name: str, scope: str = "shared", *, root: str | Path) -> Detector | None:
    """The newest active model of ``name`` for ``scope`` (files under ``root``), or None when none was trained."""
    record = latest_model_record(session, name, scope)
    if record is None:
        return None
    from detectors.registry import get_detector_class

    return get_detector_class(record.detector).load(model_path(record, root))


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
