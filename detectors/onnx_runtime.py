"""Keras models exported to ONNX when saved, and served by ONNX Runtime when loaded.

Why: a batch of 500 windows costs a few milliseconds in ONNX Runtime, and a process
that only *serves* models need not import TensorFlow at all (about a second of
start-up and several hundred MB of memory). Training still happens in Keras; the
export is a by-product of saving, and serving falls back to Keras whenever the
``.onnx`` file is missing, unreadable, or ONNX Runtime is not installed.

* :func:`export_onnx` converts a Keras model (one input, or a dict of named inputs)
  with tf2onnx and checks the export against Keras on a small random batch before
  writing it: an export that does not reproduce the model is not written (the
  detector then keeps serving through Keras).
* :class:`OnnxModel` wraps an ``InferenceSession``. Sessions run with one intra-op
  thread by default: on a small shared machine the thread pool's spinning costs more
  than it gives (measured in BENCHMARKS.md); ``VIGIL_ONNX_THREADS`` changes it.
* ``VIGIL_ONNX=0`` turns serving through ONNX Runtime off (Keras everywhere), for
  comparisons and as an escape hatch.

This is an implementation detail of the Keras detectors, not part of the detector
contract: ``score``/``score_batch`` give the same numbers either way (to float32
round-off; ``tests/detectors/test_onnx_serving.py`` holds every built-in neural
detector to 1e-5 on real candles).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ONNX_FILE", "OnnxModel", "export_onnx", "load_onnx", "onnx_enabled"]

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
OPSET = 17
#: largest absolute difference between Keras and ONNX Runtime accepted when exporting
EXPORT_TOLERANCE = 1e-4


def onnx_enabled() -> bool:
    """Serving through ONNX Runtime is on (``VIGIL_ONNX`` unset or not ``0``) and the package is installed."""
    if os.environ.get("VIGIL_ONNX", "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def _threads() -> int:
    raw = os.environ.get("VIGIL_ONNX_THREADS", "1")
    try:
        return max(0, int(raw))
    except ValueError:
        log.warning("VIGIL_ONNX_THREADS=%r is not an integer; using 1 thread", raw)
        return 1


class OnnxModel:
    """One exported model behind ``model(inputs) -> ndarray``; inputs as the Keras model took them."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads()
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, inputs: np.ndarray | Mapping[str, np.ndarray]) -> np.ndarray:
        if isinstance(inputs, Mapping):
            feed = {name: np.ascontiguousarray(inputs[name], dtype=np.float32) for name in self.input_names}
        else:
            feed = {self.input_names[0]: np.ascontiguousarray(inputs, dtype=np.float32)}
        return np.asarray(self.session.run(None, feed)[0])


def load_onnx(directory: str | Path) -> OnnxModel | None:
    """The served model of ``directory`` when it has an export and serving is on, else None (use Keras)."""
    path = Path(directory) / ONNX_FILE
    if not path.is_file() or not onnx_enabled():
        return None
    try:
        return OnnxModel(path)
    except Exception as err:  # noqa: BLE001 - a broken export must not stop a model that Keras can serve
        log.warning("%s: cannot be served by ONNX Runtime (%s); falling back to Keras", path, err)
        return None


def _signature(model: Any) -> tuple[list[str] | None, list[tuple[int | None, ...]]]:
    """(input names for a dict-input model or None, input shapes)."""
    inputs = model.input
    if isinstance(inputs, Mapping):
        names = list(inputs)
        return names, [tuple(inputs[n].shape) for n in names]
    tensor = inputs[0] if isinstance(inputs, list | tuple) else inputs
    return None, [tuple(tensor.shape)]


def export_onnx(model: Any, directory: str | Path, *, seed: int = 0) -> Path | None:
    """Write ``directory/model.onnx`` for a Keras ``model``; None (and no file) when that fails.

    The export is run on a random batch and compared with the Keras model first;
    beyond ``EXPORT_TOLERANCE`` it is discarded. A stale export from an earlier
    save is always removed first, so an ``.onnx`` file never describes another model.
    """
    path = Path(directory) / ONNX_FILE
    path.unlink(missing_ok=True)
    try:
        import tensorflow as tf
        import tf2onnx
    except ImportError as err:
        log.info("ONNX export skipped (%s); the model will be served by Keras", err)
        return None
    names, shapes = _signature(model)
    specs = tuple(
        tf.TensorSpec(shape, tf.float32, name=name) for name, shape in zip(names or ["x"], shapes, strict=True)
    )
    if names is None:

        @tf.function(input_signature=specs)
        def forward(x: Any) -> Any:
            return model(x, training=False)

    else:

        @tf.function(input_signature=specs)
        def forward(*xs: Any) -> Any:
            return model(dict(zip(names, xs, strict=True)), training=False)

    rng = np.random.default_rng(seed)
    sample = [rng.normal(size=(8, *shape[1:])).astype(np.float32) for shape in shapes]
    tmp = path.with_suffix(".onnx.tmp")
    try:
        proto, _ = tf2onnx.convert.from_function(forward, input_signature=specs, opset=OPSET)
        tmp.write_bytes(proto.SerializeToString())
        served = OnnxModel(tmp)
        feed: Any = sample[0] if names is None else dict(zip(names, sample, strict=True))
        expected = np.asarray(forward(*[tf.constant(s) for s in sample]))
        diff = float(np.max(np.abs(served(feed) - expected)))
    except Exception as err:  # noqa: BLE001 - no export is a slower model, never a lost one
        tmp.unlink(missing_ok=True)
        log.warning("ONNX export of %s failed (%s: %s); Keras will serve it", path.parent, type(err).__name__, err)
        return None
    if not np.isfinite(diff) or diff > EXPORT_TOLERANCE:
        tmp.unlink(missing_ok=True)
        log.warning("ONNX export of %s differs from Keras by %.3g; not used", path.parent, diff)
        return None
    tmp.replace(path)
    log.info("exported %s (max difference from Keras %.2g)", path, diff)
    return path
