"""Reading a NAB-layout folder: ``data/<folder>/<file>.csv`` plus ``labels/combined_windows.json``.

The scoring itself (:mod:`detectors.nab`) works on row indices; this module turns files and
label times into frames and :class:`~detectors.nab.FileLayout` objects. NAB's timestamps carry
no zone; they are read as UTC, consistently for the data and the windows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.errors import InputError
from detectors.io import read_series_csv
from detectors.nab import FileLayout, file_layout, window_rows
from detectors.nab_split import nab_split

__all__ = ["NabFile", "WINDOWS_FILE", "load_nab_file", "nab_keys", "read_windows", "read_windows_file", "select_keys"]

WINDOWS_FILE = Path("labels") / "combined_windows.json"


@dataclass(frozen=True)
class NabFile:
    """One NAB series: its key (``folder/file.csv``), values, labelled windows and layout."""

    key: str
    frame: pd.DataFrame  # a ``value`` column indexed by UTC time (repeated stamps kept in order)
    windows: list[tuple[pd.Timestamp, pd.Timestamp]]
    layout: FileLayout


def read_windows(root: Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """``folder/file.csv`` -> list of (start, end) UTC times, from ``root/labels/combined_windows.json``."""
    return read_windows_file(Path(root) / WINDOWS_FILE)


def read_windows_file(path: Path) -> dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]]:
    """``folder/file.csv`` -> list of (start, end) UTC times, from a NAB windows JSON file."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file (a NAB folder has data/ and labels/combined_windows.json)") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: invalid JSON: {err}") from None
    out: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] = {}
    for key, windows in raw.items():
        pairs = []
        for pair in windows:
            if len(pair) != 2:
                raise InputError(f"{path}: window of {key!r} must be [start, end], got {pair!r}")
            try:
                start, end = (pd.Timestamp(t, tz="UTC") for t in pair)
            except ValueError:
                raise InputError(f"{path}: window of {key!r}: not a time in {pair!r}") from None
            pairs.append((start, end))
        out[key] = pairs
    return out


def nab_keys(root: Path) -> list[str]:
    """Keys (``folder/file.csv``) of the data files under ``root/data`` that have labels."""
    windows = read_windows(root)
    data = Path(root) / "data"
    found = sorted(str(p.relative_to(data)).replace("\\", "/") for p in data.glob("*/*.csv"))
    return [k for k in found if k in windows]


def select_keys(root: Path, split: str = "all", only: list[str] | None = None) -> list[str]:
    """The keys of one half of the fixed split (``tuning``, ``heldout``) or ``all``, optionally filtered."""
    labels = read_windows(root)
    keys = nab_keys(root)
    if split != "all":
        halves = nab_split(labels)
        if split not in set(halves.values()):
            raise InputError(f"--split: expected all, tuning or heldout, got {split!r}")
        keys = [k for k in keys if halves[k] == split]
    if only:
        keys = [k for k in keys if any(part in k for part in only)]
    return keys


def load_nab_file(
    root: Path, key: str, windows: dict[str, list[tuple[pd.Timestamp, pd.Timestamp]]] | None = None
) -> NabFile:
    """Read one file and map its windows to rows."""
    windows = read_windows(root) if windows is None else windows
    if key not in windows:
        raise InputError(f"{key}: no labels in {Path(root) / WINDOWS_FILE}")
    frame = read_series_csv(Path(root) / "data" / key)
    ns = frame.index.as_unit("ns").asi8
    rows = window_rows(ns, [(s.as_unit("ns").value, e.as_unit("ns").value) for s, e in windows[key]])
    return NabFile(key, frame, windows[key], file_layout(len(frame), rows))
