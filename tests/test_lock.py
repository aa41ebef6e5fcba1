"""requirements.lock covers pyproject.toml: every dependency pinned, hashed and inside its bounds.

``make setup`` and CI install with ``pip install --require-hashes -r requirements.lock`` and then
vigil with ``--no-deps``, so a dependency added to pyproject.toml without ``make lock`` would
simply be missing. This test (and ``pip check`` in the Makefile) makes that a loud failure.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        found = _PIN.match(line)
        if found:
            pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    reqs += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": "dev"})]


def test_every_locked_package_is_pinned_with_hashes() -> None:
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 2)[2])
    assert len(entries) > 50
    for entry in entries:
        name = entry.split("==")[0]
        assert "==" in entry.splitlines()[0], f"{name}: not pinned"
        assert "--hash=sha256:" in entry, f"{name}: no hash"


@pytest.mark.parametrize("requirement", _requirements(), ids=lambda r: r.name)
def test_every_dependency_of_pyproject_is_locked_within_its_bounds(requirement: Requirement) -> None:
    pins = _pins()
    name = canonicalize_name(requirement.name)
    assert name in pins, f"{requirement} is in pyproject.toml but not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(pins[name], prereleases=True), (
        f"requirements.lock pins {name}=={pins[name]}, pyproject.toml wants {requirement}: run `make lock`"
    )


def test_dropped_and_raised_pins() -> None:
    """Issue 17, failure 8: mplfinance (a beta, never imported) is gone; keras has the safe_mode fixes."""
    from packaging.version import Version

    pins = _pins()
    assert "mplfinance" not in pins
    assert Version(pins["keras"]) >= Version("3.14")
    keras = next(r for r in _requirements() if r.name == "keras")
    assert not keras.specifier.contains("3.13.2") and keras.specifier.contains("3.14.0")
