"""The fixed split of the NAB corpus into a tuning half and a held-out half.

Fixed before any detector was run on NAB, so no choice can lean on the held-out files:
within each NAB folder the files are ordered by the SHA-256 of ``SPLIT_SALT + "folder/file.csv"``
(the key used by NAB's label files) and alternate between the halves, the first going to
tuning. That stratifies by folder (each kind of series is in both halves), is reproducible
anywhere, and depends only on the file names, never on results. With the 41 files of
``../shared/data/nab`` it gives 22 tuning and 19 held-out files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["HELDOUT", "SPLIT_SALT", "TUNING", "nab_split", "split_of"]

SPLIT_SALT = "vigil-nab-split-v1:"
TUNING = "tuning"
HELDOUT = "heldout"


def _rank_key(key: str) -> str:
    return hashlib.sha256((SPLIT_SALT + key).encode("utf-8")).hexdigest()


def nab_split(keys: Iterable[str]) -> dict[str, str]:
    """``"folder/file.csv"`` -> ``"tuning"`` | ``"heldout"``, stratified by folder.

    Keys are NAB relative paths (``realTraffic/speed_6005.csv``); a key without a folder
    counts as its own folder ``""``.
    """
    by_folder: dict[str, list[str]] = {}
    for key in sorted(set(keys)):
        folder = key.rsplit("/", 1)[0] if "/" in key else ""
        by_folder.setdefault(folder, []).append(key)
    out: dict[str, str] = {}
    for members in by_folder.values():
        for rank, key in enumerate(sorted(members, key=_rank_key)):
            out[key] = TUNING if rank % 2 == 0 else HELDOUT
    return out


def split_of(key: str, keys: Iterable[str]) -> str:
    """The half ``key`` falls in, given the whole corpus ``keys`` (the split is stratified)."""
    return nab_split(keys)[key]
