"""``[detectors.X.threshold]``: every policy (likelihood too) and suppress, validated, with per-policy defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.config import ThresholdConfig, default_config, load_config, validate_threshold
from core.errors import ConfigError
from detectors.likelihood import LikelihoodThreshold
from detectors.registry import detector_from_config
from detectors.thresholds import make_threshold


def _load(tmp_path: Path, table: str) -> ThresholdConfig:
    path = tmp_path / "config.toml"
    path.write_text(f"[detectors.lstm_forecaster]\nthreshold = {table}\n")
    return load_config(path, environ={}).detectors["lstm_forecaster"].threshold


def test_config_selects_likelihood_with_its_windows_and_suppression(tmp_path: Path) -> None:
    cfg = _load(tmp_path, '{ policy = "likelihood", window = 1000, short = 5, probability = 1e-3, suppress = 48 }')
    policy = make_threshold(cfg)
    assert isinstance(policy, LikelihoodThreshold)
    assert (policy.window, policy.short, policy.probability, policy.suppress) == (1000, 5, 1e-3, 48)
    assert (policy.min_history, policy.min_scale, policy.robust) == (100, 0.05, False)  # the policy's defaults
    detector = detector_from_config(
        "lstm_forecaster",
        default_config(detectors={"lstm_forecaster": {"threshold": cfg.model_dump(exclude_none=True)}}).detectors[
            "lstm_forecaster"
        ],
    )
    assert detector.suppress_rows == 48 and detector.threshold_.policy == "likelihood"


@pytest.mark.parametrize(("policy", "window"), [("likelihood", 2000), ("rolling_quantile", 500), ("dynamic", 500)])
def test_each_policy_gets_its_own_window_default(policy: str, window: int) -> None:
    assert ThresholdConfig(policy=policy).window == window
    assert make_threshold({"policy": policy}).window == window


def test_suppress_works_with_every_policy() -> None:
    for policy in ("k_sigma", "rolling_quantile", "dynamic", "likelihood"):
        assert make_threshold({"policy": policy, "suppress": 12}).suppress == 12
    assert make_threshold({"policy": "static", "value": 3.0, "suppress": 12}).suppress == 12


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            '{ policy = "likelihood", k = 3.0 }',
            r"detectors\.lstm_forecaster\.threshold: 'k' not used by policy 'likelihood'",
        ),
        ('{ policy = "static", value = 1.0, window = 50 }', r"'window' not used by policy 'static'"),
        ('{ policy = "likelihood", windw = 100 }', r"detectors\.lstm_forecaster\.threshold\.windw: unknown key"),
        ('{ policy = "likelihood", probability = 0.7 }', r"threshold\.probability: .*less than 0\.5.*0\.7"),
        ('{ policy = "likelihood", window = 5 }', r"threshold\.window: .*greater than or equal to 10"),
        ('{ policy = "likelihood", short = 0 }', r"threshold\.short: .*greater than or equal to 1"),
        ('{ policy = "likelihood", short = 50, window = 20 }', r"short \(50\) must not exceed window \(20\)"),
        ('{ policy = "likelihood", min_history = 300, window = 200 }', r"min_history \(300\) must not exceed window"),
        ('{ policy = "k_sigma", suppress = -1 }', r"threshold\.suppress: .*greater than or equal to 0.*-1"),
        ('{ policy = "likelyhood" }', r"threshold\.policy: .*'likelihood'.*got 'likelyhood'"),
    ],
)
def test_bad_threshold_keys_and_values_are_named(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _load(tmp_path, table)


def test_a_threshold_dict_is_checked_like_the_config() -> None:
    with pytest.raises(ConfigError, match=r"^threshold\.windw: unknown key$"):
        make_threshold({"policy": "likelihood", "windw": 10})
    with pytest.raises(ConfigError, match=r"^threshold: 'quantile' not used by policy 'dynamic'"):
        validate_threshold({"policy": "dynamic", "quantile": 0.9})


def test_saved_models_of_before_still_load_their_threshold() -> None:
    """The old model dumped k, quantile and window for every policy; that shape keeps loading."""
    old = {"policy": "static", "value": 8.0, "k": 4.0, "quantile": 0.995, "window": 500}
    assert make_threshold(old).to_dict()["value"] == 8.0
    old_dynamic = {"policy": "dynamic", "k": 4.0, "quantile": 0.995, "window": 300}
    assert make_threshold(old_dynamic).window == 300


def test_config_check_shows_the_threshold_each_detector_runs_with(tmp_path: Path) -> None:
    from bot.cli.root import app

    path = tmp_path / "config.toml"
    path.write_text(
        '[detectors.zscore]\n[detectors.lstm_forecaster]\nthreshold = { policy = "likelihood", suppress = 48 }\n'
    )
    out = CliRunner().invoke(app, ["config", "check", "--config", str(path)], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)["detectors"]
    assert shown["lstm_forecaster"]["threshold"] == {
        "policy": "likelihood",
        "window": 2000,
        "short": 10,
        "probability": 1e-4,
        "robust": False,
        "min_scale": 0.05,
        "min_history": 100,
        "record": 0,
        "suppress": 48,
    }
    default = shown["zscore"]["threshold"]["detector default"]
    assert default["candles"] == {"policy": "static", "value": 12.0, "suppress": 48}
    assert default["raw series"]["policy"] == "likelihood" and default["raw series"]["window"] == 2000
