"""Draw the example alert chart in the README from the synthetic market.

    /work/venv/bin/python docs/make_example_chart.py  # writes docs/img/alert_example.png

The market is ``feeds.synthetic.generate_market`` with one planted
pump-and-dump. The score panel shows a transparent stand-in for a detector:
a causal robust z-score of log volume (median and MAD of the previous 48
bars only), with a static threshold of 3; bars above it are the events. The
chart itself is exactly what the bot sends (``bot.alerts.charts.render_alert_chart``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.alerts.charts import render_alert_chart  # noqa: E402
from bot.alerts.text import compose_alert, html_to_text  # noqa: E402
from feeds.synthetic import generate_market  # noqa: E402

OUT = Path(__file__).with_name("img") / "alert_example.png"
THRESHOLD = 3.0


def volume_zscore(frame: pd.DataFrame, window: int = 48) -> pd.Series:
    """Robust z-score of log volume against the previous ``window`` bars (no look-ahead)."""
    logv = np.log(frame["volume"].clip(lower=1e-12))
    past = logv.shift(1).rolling(window)
    med = past.median()
    mad = (logv.shift(1) - med).abs().rolling(window).median() * 1.4826
    return (logv - med) / mad.replace(0, np.nan)


def main() -> None:
    market = generate_market(["PUMP/USDT"], days=10, timeframe="1h", seed=3, kinds=["pump_dump"], faults=False)
    frame = market.candles["PUMP/USDT"]
    scores = volume_zscore(frame)
    fired = scores[scores > THRESHOLD]
    pump = market.labels.iloc[0]  # the planted pump-and-dump
    in_pump = fired.loc[pump["start"] : pump["end"]]
    bar = in_pump.index[0] if len(in_pump) else fired.idxmax()
    window = frame.loc[: bar + pd.Timedelta(hours=12)].iloc[-120:]
    events = pd.DataFrame(
        {"timestamp": fired.index, "detector": "volume_z", "score": fired.to_numpy(), "threshold": THRESHOLD}
    )
    png = render_alert_chart(
        window, events=events, scores=scores, threshold=THRESHOLD, title="synthetic:PUMP/USDT 1h", width_px=900
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(png)
    alert = type("A", (), {"exchange": "synthetic", "symbol": "PUMP/USDT", "timeframe": "1h", "severity": "high"})()
    alert.bar_ts = int(bar.value // 1_000_000)
    ev = type("E", (), {"detector": "volume_z", "score": float(fired[bar]), "threshold": THRESHOLD, "kind": "anomaly"})
    print(html_to_text(compose_alert(alert, [ev()], frame)))
    print(f"wrote {OUT} ({len(png) / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
