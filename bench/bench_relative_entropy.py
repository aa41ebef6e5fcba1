"""relative_entropy's hypothesis test: the vectorised block-at-a-time test against the row-by-row one.

    python bench/bench_relative_entropy.py [--rows 16000] [--repeats 3]

The series is ``bench_score_file.make_series`` (the ``vigil score`` benchmark's 16,000-row
5-minute series); the detector is fitted on its first 15 % and scores the whole series. The
baseline in the same run is the row-by-row loop the test was first written as (NAB's form),
on the same histograms; both must give the same scores. Best of ``--repeats``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from bench_score_file import make_series  # noqa: E402

from detectors.classical import RelativeEntropyDetector  # noqa: E402
from detectors.io import read_series_csv  # noqa: E402
from detectors.registry import create_detector  # noqa: E402
from tests.detectors.test_classical import _hypothesis_loop  # noqa: E402


def row_by_row(hist: np.ndarray, W: int, limit: float, c_th: int, chunk: int = 0) -> np.ndarray:
    """The test one row at a time (the baseline): the reference the unit test checks the vectorised one against."""
    return _hypothesis_loop(hist, W, limit, c_th)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=16_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:  # read back as `vigil score` reads it
        path = Path(tmp) / "series.csv"
        make_series(args.rows).to_csv(path, index=False)
        frame = read_series_csv(path)
    det = create_detector("relative_entropy").fit(frame.iloc[: int(len(frame) * 0.15)])
    vectorised = RelativeEntropyDetector._hypothesis_test
    timings: dict[str, float] = {}
    scores = {}
    for label, test in (("vectorised (block of rows)", vectorised), ("row by row (baseline)", row_by_row)):
        RelativeEntropyDetector._hypothesis_test = staticmethod(test)  # type: ignore[method-assign]
        best = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            scores[label] = det.score(frame).to_numpy()
            best = min(best, time.perf_counter() - t0)
        timings[label] = best
    RelativeEntropyDetector._hypothesis_test = staticmethod(vectorised)  # type: ignore[method-assign]
    a, b = scores.values()
    assert np.array_equal(np.nan_to_num(a, nan=-1), np.nan_to_num(b, nan=-1)), "the two tests disagree"
    print(f"| relative_entropy score, {len(frame)} rows | time (s) |\n|---|---|")
    for label, seconds in timings.items():
        print(f"| {label} | {seconds:.3f} |")
    print(f"\nsame scores: yes; anomalous rows: {int(np.nansum(a))}")


if __name__ == "__main__":
    main()
