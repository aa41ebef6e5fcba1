from __future__ import annotations

import numpy as np

from detectors.pump.listwise import event_matrix, fit_listwise, listwise_targets
from detectors.pump.relative import (
    CHANGE_KINDS,
    RELATIVE_KINDS,
    event_change_features,
    event_relative_features,
    signed_log,
)


def _events(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = np.exp(np.cumsum(rng.normal(0, 0.01, size=(30, 2)), axis=0)) * np.array([1e-6, 50.0])
    return values, np.repeat([7, 3, 9], 10)


def test_event_relative_features_ignore_later_rows_and_other_events() -> None:
    values, groups = _events()
    full = event_relative_features(values, groups)
    prefix = event_relative_features(values[:14], groups[:14])  # event 3 cut after 4 rows
    np.testing.assert_allclose(full[:14], prefix, rtol=1e-6, atol=1e-6)
    changed = values.copy()
    changed[10:20] *= 1e3  # another event's scale never reaches event 7 or 9
    other = event_relative_features(changed, groups)
    np.testing.assert_allclose(other[:10], full[:10], atol=1e-6)
    np.testing.assert_allclose(other[20:], full[20:], atol=1e-6)


def test_event_relative_features_are_scale_free_and_zero_on_an_events_first_row() -> None:
    values, groups = _events()
    a = event_relative_features(values, groups)
    b = event_relative_features(values * np.array([1e4, 1e-3]), groups)
    assert a.shape == (30, len(RELATIVE_KINDS) * 2)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    assert np.all(a[[0, 10, 20]] == 0.0)


def test_event_relative_features_flag_a_step_far_above_the_usual_step() -> None:
    values, groups = _events()
    values[25, 0] *= 1.08  # 8 % step in a series whose usual step is ~1 %
    step_z = event_relative_features(values, groups)[:, 0]
    assert int(np.argmax(step_z[20:])) == 5
    assert step_z[25] > signed_log(np.array(3.0))


def test_event_change_features_ignore_later_rows_and_other_events() -> None:
    values, groups = _events(1)
    full = event_change_features(values, groups)
    assert full.shape == (30, len(CHANGE_KINDS) * 2)
    np.testing.assert_allclose(full[:14], event_change_features(values[:14], groups[:14]), atol=1e-6)
    changed = values.copy()
    changed[15:20] *= 50.0  # later rows of event 3 and nothing of events 7 or 9
    other = event_change_features(changed, groups)
    np.testing.assert_allclose(other[:15], full[:15], atol=1e-6)
    np.testing.assert_allclose(other[20:], full[20:], atol=1e-6)


def test_event_change_features_rank_a_jump_first_and_match_the_relative_step() -> None:
    values, groups = _events(2)
    values[26:, 0] *= 1.05  # a 5 % jump at row 26 of event 9 (rows 20-29)
    out = event_change_features(values, groups)
    step_rel, step_vs_max, step_rank = out[:, 0], out[:, 2], out[:, 4]
    expected = signed_log(np.array(1e3 * (values[26, 0] / values[25, 0] - 1.0)))
    assert step_rel[26] == np.float32(expected)
    assert step_vs_max[26] > signed_log(np.array(2.0))  # more than twice the largest earlier step
    assert step_rank[26] == 1.0  # the largest step of the event so far
    assert np.all(out[[0, 10, 20]][:, :4] == 0.0) and np.all(out[[0, 10, 20]][:, 4:6] == 1.0)


def test_event_matrix_lays_rows_out_per_event_with_padding() -> None:
    events = np.array([5, 5, 5, 2, 8, 8])
    matrix = event_matrix(events)
    np.testing.assert_array_equal(matrix, [[0, 1, 2], [3, -1, -1], [4, 5, -1]])
    targets = listwise_targets(np.array([0, 0, 1, 1, 0, 0]), matrix)
    np.testing.assert_array_equal(targets, [[0, 0, 1], [1, -1, -1], [0, 0, -1]])


def test_fit_listwise_learns_to_rank_each_events_marked_row_first() -> None:
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    n_events, rows = 24, 6
    x = rng.normal(size=(n_events * rows, 3)).astype(np.float32)
    y = np.zeros(n_events * rows)
    pos = np.arange(n_events) * rows + rng.integers(0, rows, n_events)
    y[pos] = 1
    x[pos, 0] += 3.0  # the marked row stands out on feature 0
    inp = keras.Input((3,), name="x")
    model = keras.Model({"x": inp}, keras.layers.Dense(1, activation="sigmoid")(inp))
    fit_listwise(
        model, {"x": x}, y, np.repeat(np.arange(n_events), rows), epochs=30, bce_weight=0.0, learning_rate=0.05
    )
    scores = np.asarray(model.predict_on_batch({"x": x})).reshape(n_events, rows)
    assert (scores.argmax(axis=1) == pos - np.arange(n_events) * rows).mean() >= 0.9
