"""Checking a saved model's metadata before anything is built from it.

A model folder is user-reachable input: copied between machines, restored
from backups, edited by hand. Its JSON used to be trusted, so a tampered
file gave a raw ``KeyError``/``TypeError`` or, worse, loaded: ``format: 999``,
``fitted: false``, a scaler of the wrong length, or a zero scale that turned
every score into NaN (a detector that silently never fires). Each check here
raises one :class:`~core.errors.DetectorError` line naming the file, the key
and the value::

    models/zscore/3/metadata.json: scaler.scale[1]: must be a finite number > 0, got 0.0

:func:`check_series_metadata` is the unsupervised template's
(``SeriesDetector.load``), :func:`check_pump_metadata` the pump-and-dump
detector's; :func:`check_pump_scaler_width` runs once its Keras model is
loaded (``safe_mode``), when the input width is known.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.errors import DetectorError
from detectors.features import DAILY_HARMONICS, FeatureSpec

__all__ = [
    "check_param_types",
    "check_pump_metadata",
    "check_pump_scaler_width",
    "check_series_metadata",
    "one_line_reason",
]

_MISSING = object()
_SHOWN = 60


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


class _Meta:
    """One metadata file being checked: every refusal names the file and the dotted key."""

    def __init__(self, path: Path, data: Any) -> None:
        self.path = path
        if not isinstance(data, dict):
            raise self.fail("(top level)", "must be a JSON object", data)
        self.data = data

    def fail(self, key: str, why: str, value: Any = _MISSING) -> DetectorError:
        got = "" if value is _MISSING else f", got {_short(value)}"
        return DetectorError(f"{self.path}: {key}: {why}{got}")

    def get(self, container: dict[str, Any], key: str, where: str = "") -> Any:
        name = f"{where}.{key}" if where else key
        if key not in container:
            raise self.fail(name, "missing")
        return container[key]

    # -- typed values ---------------------------------------------------------------------------
    def integer(self, value: Any, key: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, "must be a whole number", value)
        if low is not None and value < low:
            raise self.fail(key, f"must be >= {low}", value)
        return value

    def number(self, value: Any, key: str, *, positive: bool = False, low: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, "must be a finite number" + (" > 0" if positive else ""), value)
        if positive and value <= 0:
            raise self.fail(key, "must be a finite number > 0", value)
        if low is not None and value < low:
            raise self.fail(key, f"must be >= {low:g}", value)
        return float(value)

    def numbers(self, value: Any, key: str, *, positive: bool = False) -> list[float]:
        if not isinstance(value, list):
            raise self.fail(key, "must be a list of numbers", value)
        return [self.number(v, f"{key}[{i}]", positive=positive) for i, v in enumerate(value)]

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false", value)
        return value

    def text(self, value: Any, key: str, choices: Sequence[str] | None = None) -> str:
        if not isinstance(value, str):
            raise self.fail(key, "must be a string", value)
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}", value)
        return value

    def table(self, value: Any, key: str, *, optional: bool = False) -> dict[str, Any] | None:
        if value is None and optional:
            return None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise self.fail(key, "must be a JSON object" + (" or null" if optional else ""), value)
        return value


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a JSON object"
    return type(value).__name__


def check_param_types(path: Path, params: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Each saved hyper-parameter has the type of the detector's own default (a whole number where the
    default is one); ranges stay the detector's own judgement (its constructor and ``fit``)."""
    m = _Meta(path, {})
    for key, value in params.items():
        default = defaults.get(key)
        if default is None or value is None:
            continue
        where = f"params.{key}"
        if isinstance(default, bool) or isinstance(value, bool):
            if not (isinstance(default, bool) and isinstance(value, bool)):
                raise m.fail(where, f"must be {_kind(default)}", value)
        elif isinstance(default, int):
            m.integer(value, where)
        elif isinstance(default, float):
            m.number(value, where)
        elif _kind(default) != _kind(value):
            raise m.fail(where, f"must be {_kind(default)}", value)


def one_line_reason(err: BaseException) -> str:
    """An exception from rebuilding a detector, on one line (pydantic's errors listed as ``key: message``)."""
    errors = getattr(err, "errors", None)
    if callable(errors):
        try:
            items = errors(include_url=False)
        except TypeError:
            items = None
        if items:
            return "; ".join(
                f"{'.'.join(str(p) for p in item.get('loc', ())) or '(value)'}: {item.get('msg', '')}" for item in items
            )
    return " ".join(str(err).split()) or type(err).__name__


def _check_features(m: _Meta, features: dict[str, Any]) -> int:
    """The feature spec; returns how many features it yields (what the scaler must cover)."""
    mode = m.text(m.get(features, "mode", "features"), "features.mode", ("candles", "columns"))
    columns = m.get(features, "columns", "features")
    if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
        raise m.fail("features.columns", "must be a non-empty list of column names", columns)
    social = m.boolean(m.get(features, "social", "features"), "features.social")
    m.integer(m.get(features, "norm_window", "features"), "features.norm_window", low=1)
    m.number(m.get(features, "step_s", "features"), "features.step_s", low=0.0)
    daily = features.get("daily", [])
    if not isinstance(daily, list):
        raise m.fail("features.daily", "must be a list of coefficient rows", daily)
    quantities = 2 + int(social)  # log volatility, relative volume[, relative social volume]
    if daily and (mode != "candles" or len(daily) != quantities):
        raise m.fail("features.daily", f"must be empty or hold {quantities} rows in candle mode", daily)
    for i, row in enumerate(daily):
        if len(m.numbers(row, f"features.daily[{i}]")) != 2 * DAILY_HARMONICS:
            raise m.fail(f"features.daily[{i}]", f"must hold {2 * DAILY_HARMONICS} coefficients", row)
    extras = features.get("extras", [])
    if not isinstance(extras, list) or not all(isinstance(c, str) and c for c in extras):
        raise m.fail("features.extras", "must be a list of column names", extras)
    if "extra_window" in features:
        m.integer(features["extra_window"], "features.extra_window", low=1)
    return len(FeatureSpec.from_dict(features).names)  # the spec's own count of what the scaler must cover


def _check_scaler(m: _Meta, scaler: dict[str, Any], width: int | None) -> None:
    center = m.numbers(m.get(scaler, "center", "scaler"), "scaler.center")
    scale = m.numbers(m.get(scaler, "scale", "scaler"), "scaler.scale", positive=True)  # 0 would give NaN scores
    m.number(m.get(scaler, "clip", "scaler"), "scaler.clip", positive=True)
    if len(center) != len(scale):
        raise m.fail("scaler", f"center has {len(center)} values but scale has {len(scale)}")
    if width is not None and len(center) != width:
        raise m.fail("scaler.center", f"has {len(center)} values, the features are {width}")


def _check_threshold(m: _Meta, threshold: dict[str, Any]) -> None:
    m.text(m.get(threshold, "policy", "threshold"), "threshold.policy")
    for key, value in threshold.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise m.fail(f"threshold.{key}", "must be a finite number", value)  # a NaN threshold never fires
    if "fitted" in threshold:
        m.boolean(threshold["fitted"], "threshold.fitted")


def check_series_metadata(
    path: Path, data: Any, *, name: str, format_version: int, requires_training: bool
) -> dict[str, Any]:
    """Validate a ``SeriesDetector`` ``metadata.json``; returns it (a dict) when every key is sound."""
    m = _Meta(path, data)
    meta = m.data
    version = m.integer(m.get(meta, "format"), "format")
    if version != format_version:
        raise m.fail("format", f"this vigil reads model format {format_version}; retrain the model", version)
    detector = m.text(m.get(meta, "detector"), "detector")
    if detector != name:
        raise m.fail("detector", f"holds a {detector!r} model, not {name!r}")
    m.table(m.get(meta, "params"), "params")
    features = m.table(m.get(meta, "features"), "features", optional=True)
    width = _check_features(m, features) if features is not None else None
    scaler = m.table(m.get(meta, "scaler"), "scaler", optional=True)
    if scaler is not None:
        _check_scaler(m, scaler, width)
    threshold = m.table(m.get(meta, "threshold"), "threshold")
    assert threshold is not None
    _check_threshold(m, threshold)
    train_range = m.get(meta, "train_range_ms")
    if train_range is not None:
        if not isinstance(train_range, list) or len(train_range) != 2:
            raise m.fail("train_range_ms", "must be [first_ms, last_ms] or null", train_range)
        first = m.integer(train_range[0], "train_range_ms[0]", low=0)
        last = m.integer(train_range[1], "train_range_ms[1]", low=0)
        if last < first:
            raise m.fail("train_range_ms", "ends before it starts", train_range)
    fitted = m.boolean(m.get(meta, "fitted"), "fitted")
    if requires_training and not fitted:
        raise m.fail("fitted", "the file holds an untrained model; train it again", fitted)
    m.table(meta.get("state"), "state", optional=True)
    return meta


def check_pump_metadata(path: Path, data: Any, *, grains: Sequence[str]) -> dict[str, Any]:
    """Validate a ``pump_dump.json``; returns it (a dict) when every key is sound."""
    m = _Meta(path, data)
    meta = m.data
    detector = m.text(m.get(meta, "name"), "name")
    if detector != "pump_dump":
        raise m.fail("name", "holds another detector's model, not 'pump_dump'", detector)
    m.table(m.get(meta, "params"), "params")
    m.text(m.get(meta, "grain"), "grain", grains)
    threshold = m.number(m.get(meta, "threshold"), "threshold")
    if not 0.0 <= threshold <= 1.0:
        raise m.fail("threshold", "must be a probability between 0 and 1", threshold)
    scaler = meta.get("scaler")
    if scaler is not None:
        if not isinstance(scaler, list) or len(scaler) != 2:
            raise m.fail("scaler", "must be [mean, std] or null", scaler)
        mean = m.numbers(scaler[0], "scaler[0] (mean)")
        std = m.numbers(scaler[1], "scaler[1] (std)", positive=True)
        if len(mean) != len(std) or not mean:
            raise m.fail("scaler", f"mean has {len(mean)} values but std has {len(std)}")
    features = meta.get("features")
    if features is not None and (not isinstance(features, list) or not all(isinstance(f, str) for f in features)):
        raise m.fail("features", "must be a list of column names or null", features)
    return meta


def check_pump_scaler_width(path: Path, scaler: Any, model: Any) -> None:
    """The saved scaler must cover exactly the model's market inputs (known once the model is loaded)."""
    if scaler is None:
        return
    try:
        width = int(model.input["market"].shape[-1])
    except (AttributeError, KeyError, TypeError, IndexError):
        return  # not a dict-input model: nothing to compare with
    if len(scaler[0]) != width:
        raise DetectorError(f"{path}: scaler: has {len(scaler[0])} values, the model reads {width} market features")
