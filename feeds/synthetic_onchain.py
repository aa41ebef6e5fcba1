"""On-chain metrics for the synthetic market, with planted moves that lead the price.

The claim users pay on-chain data for is that chain activity moves *before* the price:
coins flow onto exchanges before a dump, addresses wake up before a pump. To score that
claim (and the alignment that must not cheat by a day) the synthetic market gets daily
chain series per asset, :data:`ONCHAIN_METRICS`:

* ``active_addresses``: log-normal around a per-asset level, a weekly cycle (quieter at
  weekends) and AR(1) noise (half-life ~5 days);
* ``tx_count``: follows active addresses (elasticity 0.8) plus its own noise;
* ``exchange_netflow``: coins moved onto exchanges minus off (signed, in coins), heavy
  tailed noise around zero.

Planted leads (label kind ``onchain_lead``): before a share of the market's price events
(``pump_dump``, ``flash_crash``, ``level_shift``) one day ``lead_days`` before the event's
day carries a move: before a fall (a flash crash, a level shift down) a net inflow to
exchanges of 4..10 sigma; before a rise (a pump, a level shift up) active addresses and
transactions x1.5..3. Each daily value is stamped with its day's **start** (like
Glassnode and Coin Metrics) and describes the whole day, so it is only known once the
day has closed: ``feeds.onchain.align`` shifts it by one period before it meets a bar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from feeds.synthetic import SyntheticMarket

__all__ = ["ONCHAIN_METRICS", "OnchainData", "generate_onchain"]

ONCHAIN_METRICS: tuple[str, ...] = ("active_addresses", "tx_count", "exchange_netflow")
_LEAD_KINDS = ("pump_dump", "flash_crash", "level_shift")


@dataclass(frozen=True)
class OnchainData:
    """Daily metric frames per asset (base currency, e.g. ``SYN000``) and the planted leads.

    ``labels``: ``asset, metric, start, end, kind, leads`` where ``start``/``end`` are the
    day stamps (UTC midnight) of the planted move and ``leads`` the start of the price event.
    """

    values: dict[str, pd.DataFrame]
    labels: pd.DataFrame


def _ar1(rng: np.random.Generator, n: int, phi: float, sd: float) -> np.ndarray:
    shocks = rng.standard_normal(n) * sd * np.sqrt(1 - phi**2)
    shocks[0] = rng.standard_normal() * sd * (1 - phi)
    return pd.Series(shocks).ewm(alpha=1 - phi, adjust=False).mean().to_numpy() / (1 - phi)


def _falls(frame: pd.DataFrame, start: pd.Timestamp) -> bool:
    """True when the price event at ``start`` takes the price down (its bar closes below the previous close)."""
    pos = frame.index.get_indexer([start])[0]
    if pos < 1:
        return False
    return bool(frame["close"].iloc[pos] < frame["close"].iloc[pos - 1])


def generate_onchain(
    market: SyntheticMarket,
    seed: int = 0,
    *,
    lead_share: float = 0.7,
    lead_days: tuple[int, int] = (1, 2),
) -> OnchainData:
    """Daily chain metrics for every asset of ``market``, with leads planted before its price events.

    Parameters
    ----------
    market : the synthetic market whose labels the leads precede.
    lead_share : share of eligible price events that get a lead.
    lead_days : the lead ends this many days (inclusive range) before the day of the event.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 30]))
    first = min(f.index[0] for f in market.candles.values()).floor("D")
    last = max(f.index[-1] for f in market.candles.values()).floor("D")
    days = pd.date_range(first, last, freq="D", name="time")
    n = len(days)
    weekday = days.day_of_week.to_numpy()
    weekly = np.where(weekday >= 5, -0.15, 0.03)
    values: dict[str, pd.DataFrame] = {}
    rows: list[dict[str, object]] = []
    price_events = market.labels[market.labels["kind"].isin(_LEAD_KINDS)]
    for symbol, frame in market.candles.items():
        asset = symbol.split("/")[0]
        level = np.exp(rng.uniform(np.log(2e3), np.log(1e6)))
        log_active = np.log(level) + weekly + _ar1(rng, n, 0.87, 0.12) + rng.normal(0, 0.05, n)
        log_tx = 0.8 * log_active + np.log(rng.uniform(1.5, 4.0)) + _ar1(rng, n, 0.8, 0.08)
        flow_sd = level * rng.uniform(0.002, 0.01)
        netflow = flow_sd * rng.standard_t(5, n) * np.sqrt(3 / 5)
        for event in price_events[price_events["symbol"] == symbol].itertuples():
            if rng.random() >= lead_share:
                continue
            event_day = pd.Timestamp(event.start).floor("D")
            back = int(rng.integers(lead_days[0], lead_days[1] + 1))
            end_pos = days.get_indexer([event_day - pd.Timedelta(days=back)])[0]
            if end_pos < 1:
                continue
            dump = event.kind == "flash_crash" or (event.kind == "level_shift" and _falls(frame, event.start))
            if dump:
                netflow[end_pos] += flow_sd * rng.uniform(4, 10)
                metric = "exchange_netflow"
            else:
                boost = np.log(rng.uniform(1.5, 3.0))
                log_active[end_pos] += boost
                log_tx[end_pos] += 0.8 * boost
                metric = "active_addresses"
            rows.append(
                {
                    "asset": asset,
                    "metric": metric,
                    "start": days[end_pos],
                    "end": days[end_pos],
                    "kind": "onchain_lead",
                    "leads": event.start,
                }
            )
        values[asset] = pd.DataFrame(
            {
                "active_addresses": np.round(np.exp(log_active)),
                "tx_count": np.round(np.exp(log_tx)),
                "exchange_netflow": netflow,
            },
            index=days,
        )
    labels = pd.DataFrame(rows, columns=["asset", "metric", "start", "end", "kind", "leads"])
    return OnchainData(values=values, labels=labels.sort_values(["asset", "start"], ignore_index=True))
