from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.errors import DetectorError
from detectors.pump.detector import PumpDumpDetector
from detectors.pump.features import feature_columns, read_feature_file
from detectors.pump.labels import hard_negative_rows, pump_rows, sample_negatives
from detectors.pump.metrics import best_f1_threshold, event_split
from tests.detectors.pump.pump_data import candle_frame, feature_table, pump_labels

TINY = {"lookback": 8, "epochs": 2, "batch_size": 32, "filters": 4, "lstm_units": 4}


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path = tmp_path_factory.mktemp("pump") / "features.csv"
    feature_table(10, 16).to_csv(path, index=False)
    return read_feature_file(path)


@pytest.fixture(scope="module")
def table_model(table: pd.DataFrame) -> PumpDumpDetector:
    return PumpDumpDetector(**TINY).fit_table(table)


@pytest.fixture(scope="module")
def candle_model() -> PumpDumpDetector:
    frames = {s: candle_frame(160, seed=i, pumps=(60, 120)) for i, s in enumerate(["A/BTC", "B/BTC"])}
    labels = pd.concat([pump_labels(s, f, (60, 120)) for s, f in frames.items()], ignore_index=True)
    return PumpDumpDetector(**TINY).fit(frames, labels)


def test_score_table_is_causal_within_each_event(table: pd.DataFrame, table_model: PumpDumpDetector) -> None:
    full = table_model.score_table(table)
    # drop the last 5 rows of event 3: the scores of its earlier rows and of every other event are unchanged
    rows3 = np.flatnonzero(table["pump_index"].to_numpy() == 3)
    kept = table.drop(index=rows3[-5:]).reset_index(drop=True)
    cut = table_model.score_table(kept)
    np.testing.assert_allclose(cut, np.delete(full, rows3[-5:]), rtol=1e-5, atol=1e-6)


def test_threshold_is_chosen_on_training_events_only(table: pd.DataFrame, table_model: PumpDumpDetector) -> None:
    # the threshold is the best-F1 point on the validation share of the TRAINING table's events
    val = event_split(table["pump_index"].to_numpy(), table_model.validation_share, table_model.random_state)
    scores = table_model.score_table(table)
    assert table_model.threshold_ == pytest.approx(best_f1_threshold(table["gt"].to_numpy()[val], scores[val]))
    # held-out labels play no part: retraining on the same table with other "test" labels around gives the same threshold
    again = PumpDumpDetector(**TINY).fit_table(table)
    assert again.threshold_ == pytest.approx(table_model.threshold_, abs=1e-6)


def test_crossfit_threshold_comes_from_out_of_fold_training_scores(table: pd.DataFrame) -> None:
    from detectors.pump.metrics import event_folds

    det = PumpDumpDetector(
        **TINY, chunk_inputs="ranked", chunk_loss="mixed", chunk_fit="crossfit", ensemble=3, wide=True, input_noise=0.2
    )
    det.fit_table(table)
    # every training event scored by the member that never saw it; the threshold is their best-F1 point
    inputs = det._table_inputs(table)
    folds = event_folds(table["pump_index"].to_numpy(), 3, det.random_state)
    oof = np.zeros(len(table))
    for k in range(3):
        held = folds == k
        member = det.model_.get_layer(f"member_{k}")
        oof[held] = np.asarray(member.predict_on_batch({n: v[held] for n, v in inputs.items()})).reshape(-1)
    assert det.threshold_ == pytest.approx(best_f1_threshold(table["gt"].to_numpy(), oof))
    # the saved model averages the members
    members = np.mean([det.model_.get_layer(f"member_{k}").predict_on_batch(inputs) for k in range(3)], axis=0)
    np.testing.assert_allclose(det.score_table(table), members.reshape(-1), rtol=1e-5, atol=1e-6)


def test_mixed_loss_alternates_listwise_and_row_wise_members() -> None:
    from detectors.pump.net import member_loss

    assert [member_loss("mixed", k) for k in range(4)] == ["listwise+bce", "bce", "listwise+bce", "bce"]
    assert member_loss("listwise", 1) == "listwise"


def test_crossfit_needs_one_event_per_fold(table: pd.DataFrame) -> None:
    few = table[table["pump_index"].isin(table["pump_index"].unique()[:2])].reset_index(drop=True)
    with pytest.raises(DetectorError, match="crossfit needs >= 3 training events, got 2"):
        PumpDumpDetector(**TINY, chunk_fit="crossfit", ensemble=3).fit_table(few)
    with pytest.raises(DetectorError, match="pump_dump.ensemble: crossfit needs >= 2"):
        PumpDumpDetector(chunk_fit="crossfit", ensemble=1)


def test_unfitted_or_wrong_grain_raises_detector_error(table: pd.DataFrame, table_model: PumpDumpDetector) -> None:
    with pytest.raises(DetectorError, match="not fitted"):
        PumpDumpDetector().score_table(table)
    with pytest.raises(DetectorError, match="trained on 'chunks'"):
        table_model.score(candle_frame(40))


def test_fit_without_positives_raises(table: pd.DataFrame) -> None:
    no_pumps = table.assign(gt=0)
    with pytest.raises(DetectorError, match="no positive rows"):
        PumpDumpDetector(**TINY).fit_table(no_pumps)


def test_pump_rows_mark_start_to_price_peak() -> None:
    frame = candle_frame(40, pumps=(10,))
    y = pump_rows(frame, pump_labels("X", frame, (10,)), "X")
    assert np.flatnonzero(y).tolist() == [10, 11, 12]


def test_score_is_causal_and_nan_during_warmup(candle_model: PumpDumpDetector) -> None:
    frame = candle_frame(100, seed=5, pumps=(70,))
    full = candle_model.score(frame)
    assert full.iloc[: candle_model.warmup].isna().all()
    assert full.iloc[candle_model.warmup :].notna().all()
    prefix = candle_model.score(frame.iloc[:80])
    pd.testing.assert_series_equal(prefix, full.iloc[:80], rtol=1e-5)


def test_score_batch_matches_per_symbol_scores(candle_model: PumpDumpDetector) -> None:
    frames = {f"S{i}/BTC": candle_frame(90, seed=10 + i, pumps=(80,)) for i in range(3)}
    frames["NOSOCIAL/BTC"] = candle_frame(90, seed=20, social=False)
    frames["SHORT/BTC"] = candle_frame(5, seed=21)
    frames["EMPTY/BTC"] = candle_frame(5, seed=22).iloc[:0]
    batch = candle_model.score_batch(frames, last_n=3)
    assert batch["EMPTY/BTC"].empty
    for symbol, frame in frames.items():
        alone = candle_model.score(frame).iloc[-3:]
        assert batch[symbol].index.equals(alone.index)
        np.testing.assert_allclose(batch[symbol].to_numpy(), alone.to_numpy(), rtol=1e-4, atol=1e-5)
    assert batch["SHORT/BTC"].isna().all()  # still in warm-up


def test_missing_social_branch_scores_like_unknown_social(candle_model: PumpDumpDetector) -> None:
    frame = candle_frame(60, seed=7, pumps=(50,))
    absent = candle_model.score(frame.drop(columns=["social_volume"]))
    unknown = candle_model.score(frame.assign(social_volume=np.nan))
    with_social = candle_model.score(frame)
    assert absent.iloc[candle_model.warmup :].between(0, 1).all()
    pd.testing.assert_series_equal(absent, unknown)
    assert not np.allclose(absent.dropna(), with_social.dropna())  # the branch is used when present


def test_save_load_roundtrip_keeps_scores_and_threshold(candle_model: PumpDumpDetector, tmp_path: Path) -> None:
    frame = candle_frame(50, seed=3)
    candle_model.save(tmp_path / "m")
    loaded = PumpDumpDetector.load(tmp_path / "m")
    assert loaded.threshold_ == candle_model.threshold_
    assert loaded.lookback == candle_model.lookback
    pd.testing.assert_series_equal(loaded.score(frame), candle_model.score(frame), rtol=1e-5)
    assert (loaded.is_anomaly(loaded.score(frame)).dtype) == bool


def test_load_of_a_non_model_directory_names_it(tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match="not a saved pump_dump model"):
        PumpDumpDetector.load(tmp_path)


def test_bad_hyper_parameters_are_named() -> None:
    with pytest.raises(DetectorError, match="pump_dump.lookback"):
        PumpDumpDetector(lookback=1)


def test_load_refuses_a_candle_model_trained_on_other_features(candle_model: PumpDumpDetector, tmp_path: Path) -> None:
    path = candle_model.save(tmp_path / "m")
    meta = json.loads((path / "pump_dump.json").read_text())
    meta["features"] = meta["features"][:-1]
    (path / "pump_dump.json").write_text(json.dumps(meta))
    with pytest.raises(DetectorError, match="pump_dump.json: model was trained on candle features .*retrain it"):
        PumpDumpDetector.load(path)


def test_sample_negatives_keeps_hard_negatives_first() -> None:
    rng = np.random.default_rng(0)
    neg = np.arange(100)
    hard = np.zeros(100, dtype=bool)
    hard[[3, 50, 97]] = True
    picked = sample_negatives(neg, 10, rng, hard)
    assert len(picked) == 10 and len(set(picked.tolist())) == 10
    assert {3, 50, 97} <= set(picked.tolist())
    assert len(sample_negatives(neg, 10, rng, None)) == 10  # plain random draw without flags
    np.testing.assert_array_equal(sample_negatives(neg[:5], 10, rng, hard), neg[:5])  # under the cap: all kept
    hard[:] = True
    assert len(sample_negatives(neg, 10, rng, hard)) == 10  # more hard ones than the cap: thinned


def test_hard_negative_rows_mark_other_kinds_and_the_dump_but_not_the_pump() -> None:
    frame = candle_frame(60, pumps=(10,))
    labels = pd.concat(
        [
            pump_labels("X", frame, (10,)),
            pd.DataFrame(
                {"symbol": ["X"], "start": [frame.index[40]], "end": [frame.index[41]], "kind": ["flash_crash"]}
            ),
        ],
        ignore_index=True,
    )
    hard = hard_negative_rows(frame, labels, "X", after=2)
    assert np.flatnonzero(hard).tolist() == [13, 14, 15, 16, 17, 18, 19, 40, 41, 42, 43]  # pump rows 10-12 excluded
    assert not hard_negative_rows(frame, labels, "Y").any()


@pytest.mark.slow
def test_optional_inputs_widen_the_market_branch_and_may_be_missing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = {s: candle_frame(160, seed=i, pumps=(60, 120)) for i, s in enumerate(["A/BTC", "B/BTC"])}
    frames = {s: f.assign(onchain_tx_count=rng.normal(100, 5, len(f))) for s, f in frames.items()}
    labels = pd.concat([pump_labels(s, f, (60, 120)) for s, f in frames.items()], ignore_index=True)
    det = PumpDumpDetector(**TINY, inputs=["onchain_tx_count"], input_window=24).fit(frames, labels)
    cols, scaled = feature_columns("candles")
    assert det.model_.input["market"].shape[-1] == len(cols) + len(scaled) + 1
    without = frames["A/BTC"].drop(columns="onchain_tx_count")  # the source was down: scored, not an error
    scores = det.score(without)
    assert scores.iloc[det.warmup :].notna().all()
    batch = det.score_batch({"A/BTC": frames["A/BTC"]}, last_n=5)["A/BTC"]
    np.testing.assert_allclose(batch.to_numpy(), det.score(frames["A/BTC"]).iloc[-5:].to_numpy(), atol=1e-5)
    back = PumpDumpDetector.load(det.save(tmp_path / "m"))
    assert back.inputs == ["onchain_tx_count"] and back.input_window == 24
    assert "inputs" not in PumpDumpDetector().params
