"""Stylized facts of the synthetic market next to the real candles in the shared data folder.

Prints the markdown table used in ``docs/synthetic.md``.

    python bench/synthetic_facts.py [--data /work/shared/data/candles]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from feeds.synthetic import generate_market
from feeds.synthetic_stats import FACT_NAMES, stylized_facts
from storage.candle_csv import read_candle_csv

_SYNTH = [("1h", 365), ("5m", 20), ("1m", 3)]


def _row(name: str, frames: list[pd.DataFrame]) -> dict[str, object]:
    facts = pd.DataFrame([stylized_facts(f) for f in frames])
    row: dict[str, object] = {"series": name, "n": len(frames)}
    for col in FACT_NAMES:
        row[col] = f"{facts[col].median():.3g} ({facts[col].min():.3g} .. {facts[col].max():.3g})"
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/candles"))
    args = parser.parse_args()
    rows = []
    for tf, days in _SYNTH:
        real = [read_candle_csv(p).iloc[1:] for p in sorted(args.data.glob(f"*-{tf}.csv"))]
        if real:
            rows.append(_row(f"real {tf}", real))
        clean = generate_market(20, days, tf, seed=0, anomaly_rate=0)
        rows.append(_row(f"synthetic {tf}, {days} days, no anomalies", list(clean.candles.values())))
        planted = generate_market(20, days, tf, seed=0)
        rows.append(_row(f"synthetic {tf}, {days} days, default anomalies", list(planted.candles.values())))
    header = list(rows[0])
    print("values: median over series (min..max)\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
