"""Fault soak: ``vigil run`` for 100+ one-second cycles while everything around it misbehaves.

A real ``vigil run`` subprocess watches three markets of one-second bars on the live fake
exchange, alerting a chat through the fake Bot API. During the soak:

* the process is killed with SIGKILL at seeded random points: after a random uptime, or at a
  random crash point of a cycle (``VIGIL_CRASH_AT``), then started again;
* both fakes answer at random with 429s, 5xx, timeouts and malformed bodies
  (``tests/fakes/chaos.py``; the product runs unchanged);
* at least 1,000 updates arrive from chats and users outside the allowlist: commands with
  hostile arguments, forged buttons, edits, membership changes;
* the config holds secrets (bot token, exchange key and secret) and the logs alternate
  between text and JSON (one run at DEBUG).

Then the outage ends, the leases of deliveries a kill left in flight run out (the test moves
them; waiting five minutes would prove nothing more), one last run drains the outbox and stops
on SIGTERM, and the test checks: every candle stored once with no hole and the values the
exchange served; every spike after the first scored bar an event, once; every alert delivered
exactly once, or more only inside the documented window (a kill or a lost answer while Telegram
was accepting it); nothing changed by outsiders, who only ever got the refusal; no secret in
any log line; no process left running.

Figures (cycles, kills, faults, updates, wall time) are printed; ``BENCHMARKS.md`` records a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update

from bot.runtime.faults import CRASH_POINTS
from storage.db import open_database
from storage.models import Alert, Candle, Chat, Cycle, Delivery, Event, SymbolMute, ThresholdOverride, utcnow
from tests.bot.runtime.test_restart import _toml
from tests.fakes.chaos import SPIKES, Chaos, ChaoticTelegram, LiveFakeBinance, live_bar, outsider_update
from tests.fakes.telegram import FakeTelegram

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
SEED = 17
CHAT = 777
ADMIN = 4242
TOKEN = "5566778899:AAFsoakSoakSoakSoakSoakSoakSoakSoakS"
API_KEY = "soak-api-key-3141592653"
API_SECRET = "soak-api-secret-2718281828"
SYMBOLS = list(SPIKES)
MIN_CYCLES = 100
MIN_UPDATES = 1000
MAX_RUNS = 40  # a bound on the loop, not a time limit


def _config(path: Path, db: Path, ex: LiveFakeBinance, tg: FakeTelegram, fmt: str, level: str) -> Path:
    ccxt = {**ex.ccxt_config(), "apiKey": API_KEY, "secret": API_SECRET}
    watch = "".join(f'[[watchlist]]\nexchange = "binance"\nsymbol = "{s}"\ntimeframe = "1s"\n' for s in SYMBOLS)
    path.write_text(
        f"""
[database]
url = "sqlite:///{db}"
[logging]
format = "{fmt}"
level = "{level}"
[exchanges.binance]
max_retries = 3
retry_base_delay = 0.05
retry_max_delay = 0.2
ccxt_config = {_toml(ccxt)}
{watch}
[detectors.zscore]
threshold = {{ policy = "static", value = 8.0 }}
params = {{ window = 60 }}
[telegram]
token = "{TOKEN}"
base_url = "{tg.base_url}"
base_file_url = "{tg.base_file_url}"
allowed_chat_ids = [{CHAT}]
admin_user_ids = [{ADMIN}]
[alerts]
cooldown_minutes = 0
chart_bars = 60
chart_dir = "{path.parent / "charts"}"
[scheduler]
close_delay_seconds = 0.3
history_bars = 300
misfire_grace_seconds = 2
retrain_interval_hours = 1000
"""
    )
    return path


async def _start(cfg: Path, crash_at: str | None, log: Path) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"})
    if crash_at:
        env["VIGIL_CRASH_AT"] = crash_at
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--config",
        str(cfg),
        "--models",
        str(cfg.parent / "models"),
        env=env,
        cwd=str(cfg.parent),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=log.open("ab"),
    )


async def _until(predicate: object, timeout: float) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False): a bound, not an assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.2)
    return False


def _finished_cycles(factory: object) -> int:
    with factory() as s:  # type: ignore[operator]
        # finished with the bars it scored (an abandoned cycle, closed at the next start, has no until_ms)
        return int(s.scalar(select(func.count()).select_from(Cycle).where(Cycle.until_ms.is_not(None))) or 0)


async def test_vigil_run_survives_kills_faults_and_outsiders(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    chaos = Chaos(seed=SEED)
    db = tmp_path / "vigil.db"
    _engine, factory = open_database(f"sqlite:///{db}")
    pids: list[int] = []
    logs: list[Path] = []
    kills = Counter[str]()
    window_alerts: set[int] = set()  # deliveries a kill caught in flight: at-least-once allowed
    updates = Counter[str]()
    t0 = time.monotonic()

    async with LiveFakeBinance(SYMBOLS, chaos) as ex, ChaoticTelegram(chaos, token=TOKEN) as tg:
        stop_updates = asyncio.Event()

        async def outsiders() -> None:
            while not stop_updates.is_set():
                for _ in range(3):
                    updates[outsider_update(tg, rng, {CHAT}, {ADMIN})] += 1
                await asyncio.sleep(0.25)

        pusher = asyncio.create_task(outsiders())
        run = 0
        try:
            while _finished_cycles(factory) < MIN_CYCLES or sum(updates.values()) < MIN_UPDATES:
                assert run < MAX_RUNS, f"{MAX_RUNS} runs made only {_finished_cycles(factory)} cycles"
                run += 1
                fmt = "json" if run % 2 else "text"
                cfg = _config(tmp_path / "config.toml", db, ex, tg, fmt, "DEBUG" if run == 3 else "INFO")
                crash_at = rng.choice(CRASH_POINTS) if run % 3 == 2 else None  # every third run dies at a crash point
                logs.append(tmp_path / f"run{run}.log")
                proc = await _start(cfg, crash_at, logs[-1])
                pids.append(proc.pid)
                # killed by itself at the crash point, or from outside after a random time once it is up
                uptime = rng.uniform(4.0, 16.0)
                before = _finished_cycles(factory)
                up = await _until(lambda p=proc, b=before: p.returncode is not None or _finished_cycles(factory) > b, 120)
                assert up, f"run {run} made no cycle in 120 s: {logs[-1].read_text()[-2000:]}"
                try:
                    await asyncio.wait_for(proc.wait(), timeout=uptime)
                    kills[f"sigkill at {crash_at}"] += 1
                except TimeoutError:  # no crash point (or one this run did not reach, e.g. no alert to send)
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    kills["sigkill at a random time"] += 1
                assert proc.returncode == -signal.SIGKILL, logs[-1].read_text()[-3000:]
                with factory() as s:  # a delivery claimed but not recorded: the documented window
                    window_alerts |= set(s.scalars(select(Delivery.alert_id).where(Delivery.status == "sending")))
            stop_updates.set()
            await pusher

            # The outage is over; leases of deliveries the kills left in flight have run out.
            chaos.enabled = False
            with factory.begin() as s:
                s.execute(
                    update(Delivery)
                    .where(Delivery.status.in_(["sending", "pending"]))
                    .values(next_attempt_at=utcnow() - timedelta(seconds=1))
                )
            logs.append(tmp_path / "final.log")
            cfg = _config(tmp_path / "config.toml", db, ex, tg, "text", "INFO")
            before = _finished_cycles(factory)
            final = await _start(cfg, None, logs[-1])
            pids.append(final.pid)

            def drained() -> bool:
                with factory() as s:
                    open_rows = s.scalar(
                        select(func.count()).select_from(Delivery).where(Delivery.status.in_(["pending", "sending"]))
                    )
                return open_rows == 0 and _finished_cycles(factory) >= before + 3  # up, and a few cycles of its own

            await _until(drained, 120)
            await tg.wait_idle(timeout=30)
            final.send_signal(signal.SIGTERM)
            await asyncio.wait_for(final.wait(), timeout=60)
            assert final.returncode == 0, logs[-1].read_text()[-3000:]
            stopped_ms = int(time.time() * 1000)
        finally:
            stop_updates.set()
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wall = time.monotonic() - t0
        tg_requests = list(tg.requests)
        sent = tg.sent(CHAT)

    # -- nothing left running
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

    # -- candles: every second once, no hole, and the values the exchange served
    with factory() as s:
        last_until = s.scalar(select(func.max(Cycle.until_ms)))
        for symbol in SYMBOLS:
            rows = s.execute(
                select(Candle.ts, Candle.open, Candle.high, Candle.low, Candle.close, Candle.volume)
                .where(Candle.symbol == symbol)
                .order_by(Candle.ts)
            ).all()
            ts = np.array([r[0] for r in rows], dtype=np.int64)
            assert len(ts) == len(np.unique(ts))
            assert (np.diff(ts) == 1000).all(), f"{symbol}: holes at {ts[:-1][np.diff(ts) != 1000][:5]}"
            assert ts[-1] == last_until - 1000  # up to the newest bar the last cycle saw closed (outage over)
            assert ts[-1] < stopped_ms  # never the open bar
            served = live_bar(symbol, ts)[["open", "high", "low", "close", "volume"]].to_numpy()
            assert np.allclose(np.array([r[1:] for r in rows]), served, rtol=1e-7)

        # -- events: unique, and every spike after the first scored bar is one
        events = s.scalars(select(Event)).all()
        assert len({(e.symbol, e.detector, e.bar_ts) for e in events}) == len(events)
        first_scored = s.scalar(select(func.min(Cycle.until_ms)))
        last_scored = s.scalar(select(func.max(Cycle.until_ms)))
        got = {(e.symbol, e.bar_ts) for e in events}
        for symbol, (period, offset) in SPIKES.items():
            spikes = [k * 1000 for k in range(first_scored // 1000, last_scored // 1000) if k % period == offset]
            missing = [t for t in spikes if (symbol, t) not in got]
            assert not missing, f"{symbol}: spikes without an event at {missing}"

        # -- alerts: one delivery each, sent; the chat saw each once (more only inside the window)
        alerts = s.scalars(select(Alert)).all()
        deliveries = s.scalars(select(Delivery)).all()
        assert alerts and len(deliveries) == len(alerts)
        assert {d.status for d in deliveries} == {"sent"} and {d.chat_id for d in deliveries} == {CHAT}

        # -- outsiders changed nothing
        assert s.scalar(select(func.count()).select_from(ThresholdOverride)) == 0
        assert s.scalar(select(func.count()).select_from(SymbolMute)) == 0
        assert {c.id for c in s.scalars(select(Chat))} <= {CHAT}
        from storage.models import WatchlistEntry

        watched = s.scalars(select(WatchlistEntry)).all()  # the config's markets, as the cycle records their checks
        assert {e.symbol for e in watched} <= set(SYMBOLS) and all(e.added_by is None for e in watched)

    per_alert = Counter(_alert_id(r.params) for r in sent)
    lost_answers = {_alert_id(r.params) for r in tg_requests if r.outcome in ("dropped-after", "hung-after")}
    for alert in alerts:
        n = per_alert.get(alert.id, 0)
        assert n >= 1, f"alert {alert.id} never reached the chat"
        if alert.id not in window_alerts | lost_answers:
            assert n == 1, f"alert {alert.id} reached the chat {n} times outside the documented window"
    refusals = [r for r in tg_requests if r.method == "sendMessage" and r.params.get("chat_id") not in (CHAT, None)]
    assert all(r.params.get("text") == "Sorry, this bot is private." for r in refusals)

    # -- no secret in any log line
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in (TOKEN, TOKEN.split(":")[1], API_KEY, API_SECRET):
            assert secret not in text, f"{path.name} shows a secret"
        assert "Traceback" not in text or path.name == "run3.log"  # DEBUG keeps tracebacks of bugs, masked

    cycles = _finished_cycles(factory)
    duplicates = sum(max(0, per_alert.get(a.id, 0) - 1) for a in alerts)
    print(
        f"\nsoak: {cycles} cycles in {run + 1} runs, {sum(kills.values())} SIGKILLs ({dict(kills)}), "
        f"faults {dict(chaos.counts)}, {sum(updates.values())} outsider updates ({dict(updates)}), "
        f"{len(events)} events, {len(alerts)} alerts ({duplicates} duplicate sends inside the window, "
        f"{len(window_alerts)} caught in flight), wall {wall:.0f} s"
    )


def _alert_id(params: dict[str, object]) -> int | None:
    """The alert a sent message belongs to, from its buttons' callback data (``v1:<action>:<id>``)."""
    markup = params.get("reply_markup")
    if isinstance(markup, str):
        markup = json.loads(markup)
    if not isinstance(markup, dict):
        return None
    for row in markup.get("inline_keyboard", []):
        for button in row:
            data = str(button.get("callback_data", ""))
            if data.count(":") == 2:
                return int(data.rsplit(":", 1)[1])
    return None
