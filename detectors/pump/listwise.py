"""Listwise (within-event softmax) training of the pump network on La Morgia event tables.

In the real 60 s files every event has one pump row among ~40 rows, and what matters is that the
event's pump row scores highest. A row-wise loss spends its capacity on calibrating thousands of
easy negatives; the listwise loss instead treats each event as one example: a softmax over the
logits of the event's rows, cross-entropy against the pump row. A weighted binary cross-entropy
can be added so the sigmoid output stays usable as a probability for the alarm threshold.

The scored network is unchanged (``build_pump_network``'s sigmoid output); its logit is recovered
as ``log p - log(1 - p)`` inside the loss, so the saved model and the live path are unaffected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["event_matrix", "fit_listwise", "listwise_targets"]

_EPS = 1e-7


def event_matrix(events: np.ndarray) -> np.ndarray:
    """Row indices laid out one event per line, ``-1`` padding: shape (n_events, longest event).

    Parameters
    ----------
    events : ndarray, shape (n_rows,); rows of one event consecutive

    Returns
    -------
    ndarray of int64, shape (n_events, max_rows); line ``i`` lists the ``i``-th event's rows in order.
    """
    events = np.asarray(events)
    if len(events) == 0:
        return np.zeros((0, 0), dtype=np.int64)
    starts = np.r_[True, events[1:] != events[:-1]]
    event_no = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    pos = np.arange(len(events)) - first[event_no]
    out = np.full((int(event_no[-1]) + 1, int(pos.max()) + 1), -1, dtype=np.int64)
    out[event_no, pos] = np.arange(len(events))
    return out


def listwise_targets(y: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Labels in ``event_matrix`` layout: 0/1 at real rows, -1 at padding; shape of ``matrix``."""
    y = np.asarray(y, dtype=np.float32)
    return np.where(matrix >= 0, y[np.maximum(matrix, 0)], -1.0).astype(np.float32)


def _loss(bce_weight: float, pos_weight: float) -> Any:
    from keras import ops

    def loss(y_true: Any, p: Any) -> Any:
        valid = ops.cast(y_true >= 0, "float32")
        target = ops.maximum(y_true, 0.0) * valid
        p = ops.clip(p, _EPS, 1.0 - _EPS)
        logit = ops.log(p) - ops.log(1.0 - p)
        logit = ops.where(valid > 0, logit, -1e9)
        log_soft = logit - ops.logsumexp(logit, axis=1, keepdims=True)
        n_pos = ops.sum(target, axis=1)
        has_pos = ops.cast(n_pos > 0, "float32")
        ce = -ops.sum(target * ops.where(valid > 0, log_soft, 0.0), axis=1) / ops.maximum(n_pos, 1.0)
        listwise = ops.sum(ce * has_pos) / ops.maximum(ops.sum(has_pos), 1.0)
        if bce_weight <= 0:
            return listwise
        row = -(pos_weight * target * ops.log(p) + (1.0 - target) * ops.log(1.0 - p)) * valid
        bce = ops.sum(row) / ops.maximum(ops.sum(valid), 1.0)
        return listwise + bce_weight * bce

    return loss


def fit_listwise(
    model: Any,
    inputs: dict[str, np.ndarray],
    y: np.ndarray,
    events: np.ndarray,
    *,
    epochs: int,
    events_per_batch: int = 8,
    bce_weight: float = 1.0,
    learning_rate: float = 2e-3,
) -> None:
    """Train ``model`` (rows -> P(pump)) in place with the listwise loss over whole events.

    Parameters
    ----------
    model : Keras model with dict inputs of shape (rows, ...) and output (rows, 1)
    inputs : its inputs for the training rows, each of shape (n_rows, ...)
    y : 0/1 labels, shape (n_rows,)
    events : event ids, shape (n_rows,), rows of an event consecutive
    bce_weight : weight of the added class-balanced binary cross-entropy (0: listwise only)
    """
    import keras
    from keras import ops

    matrix = event_matrix(events)
    n_events, width = matrix.shape
    safe = np.maximum(matrix, 0)
    x = {
        k: np.where((matrix >= 0).reshape(matrix.shape + (1,) * (v.ndim - 1)), v[safe], 0).astype(np.float32)
        for k, v in inputs.items()
    }
    targets = listwise_targets(y, matrix)
    n_pos = max(float((targets == 1).sum()), 1.0)
    pos_weight = float((targets == 0).sum()) / n_pos

    class _PerEvent(keras.Model):  # type: ignore[misc]
        def __init__(self, rows: Any) -> None:
            super().__init__(name="per_event")
            self.rows = rows

        def call(self, batch: dict[str, Any]) -> Any:
            flat = {k: ops.reshape(v, (-1,) + tuple(v.shape[2:])) for k, v in batch.items()}
            return ops.reshape(self.rows(flat), (-1, width))

    wrapper = _PerEvent(model)
    wrapper.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=_loss(bce_weight, pos_weight))
    wrapper.fit(x, targets, epochs=epochs, batch_size=min(events_per_batch, n_events), shuffle=True, verbose=0)
