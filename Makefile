# Two commands from a fresh clone:
#   make demo   set up .venv and run the main job offline (vigil demo)
#   make test   set up .venv and run the whole test suite
# Installs come from requirements.lock (every package pinned, with its hashes): `make lock` regenerates it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock

.PHONY: demo test test-fast setup lint lock audit

# --require-hashes: a package missing from the lock, unpinned or with another hash stops the install.
# vigil itself goes in without dependencies (they all came from the lock) and without build isolation
# (setuptools is pinned in the lock too), then `pip check` fails loudly if pyproject.toml asks for
# something the lock does not provide (a stale lock).
$(BIN)/vigil: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $(BIN)/vigil

setup: $(BIN)/vigil

demo: setup
	$(BIN)/vigil demo

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .

# Regenerate the lock from pyproject.toml (runtime + dev extras) for CPython 3.11 on x86-64 Linux,
# the machines vigil is developed, tested and run on. Needs the package index; uv comes with the dev extras.
lock: setup
	$(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 --custom-compile-command "make lock" --quiet -o $(LOCK)

# Known vulnerabilities of every pinned package (needs the network; pip-audit is not a dependency).
audit: setup
	$(BIN)/pip install --quiet pip-audit
	$(BIN)/pip-audit --require-hashes --disable-pip -r $(LOCK)
