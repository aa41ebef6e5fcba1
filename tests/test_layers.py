"""The floor plan (issue 15) as a test: the real lint-imports passes on the tree and fails when an import climbs.

The contracts live in ``pyproject.toml`` (``[tool.importlinter]``): bot > backtest >
feeds | detectors > storage > core, no typer/rich below bot, no heavy library in
core, telegram only in bot. Each contract is checked on the repository, and on a
copy of it with one forbidden import added, to show the check can fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("core", "storage", "feeds", "detectors", "backtest", "bot")
_CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
CONTRACTS = {c["id"]: c["name"] for c in _CONFIG["contracts"]}

# One intrusion per contract: (file, import line added at its end, the arrow lint-imports must name).
INTRUSIONS = {
    "layers": ("storage/candles.py", "import bot", "storage.candles -> bot"),
    "no-cli-below-bot": ("detectors/thresholds.py", "import typer", "detectors.thresholds -> typer"),
    "light-core": ("core/timeframes.py", "import tensorflow", "core.timeframes -> tensorflow"),
    "telegram-only-in-bot": ("backtest/engine.py", "import telegram", "backtest.engine -> telegram"),
}
SIBLINGS = ("feeds/replay.py", "import detectors", "feeds.replay -> detectors")  # feeds | detectors: independent

# Contracts broken today by files still being moved (strict: the marker must go once they pass).
BROKEN_TODAY: dict[str, str] = {}


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    """The venv's lint-imports on ``root`` (its pyproject.toml, its packages first on the path)."""
    exe = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache", "--no-logo"], cwd=root, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def on_repo() -> str:
    out = _lint(ROOT)
    return out.stdout + out.stderr


@pytest.fixture(scope="module")
def on_intruded_copy(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("intruded")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    for file, line, _arrow in [*INTRUSIONS.values(), SIBLINGS]:
        with (root / file).open("a") as fh:
            fh.write(f"\n{line}  # added by tests/test_layers.py\n")
    out = _lint(root)
    assert out.returncode != 0, out.stdout
    return out.stdout + out.stderr


def test_every_contract_is_checked() -> None:
    assert set(CONTRACTS) == set(INTRUSIONS)


@pytest.mark.parametrize(
    "contract",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=BROKEN_TODAY[c])) if c in BROKEN_TODAY else c
        for c in INTRUSIONS
    ],
)
def test_lint_imports_keeps_contract_on_the_repo(on_repo: str, contract: str) -> None:
    assert f"{CONTRACTS[contract]} KEPT" in on_repo, on_repo


@pytest.mark.parametrize("contract", list(INTRUSIONS))
def test_lint_imports_fails_naming_a_forbidden_import(on_intruded_copy: str, contract: str) -> None:
    _file, _line, arrow = INTRUSIONS[contract]
    assert f"{CONTRACTS[contract]} BROKEN" in on_intruded_copy
    assert arrow in on_intruded_copy, on_intruded_copy


def test_lint_imports_fails_when_feeds_and_detectors_meet(on_intruded_copy: str) -> None:
    assert SIBLINGS[2] in on_intruded_copy, on_intruded_copy
