"""``vigil watch/unwatch/watchlist/events/chart`` and ``vigil alerts flush`` through the service layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from typer.testing import CliRunner

from bot.cli.root import app
from storage.db import open_database
from storage.models import Delivery, Event, WatchlistEntry
from storage.outbox import queue_alerts
from tests.bot.telegram.helpers import candles, store

runner = CliRunner()


def _run(*args: str, url: str) -> Any:
    return runner.invoke(app, [*args, "--db", url])


def test_cli_watch_list_unwatch_round_trip(sqlite_url: str) -> None:
    r = _run("watch", "eth-usdt", "--timeframe", "4h", "--no-validate", url=sqlite_url)
    assert r.exit_code == 0, r.output
    assert "now watching binance:ETH/USDT:4h" in r.output
    r = _run("watchlist", url=sqlite_url)
    assert "ETH/USDT" in r.output and "4h" in r.output and "cli" in r.output
    r = _run("unwatch", "ETH/USDT", url=sqlite_url)
    assert "removed 1 watchlist entry for ETH/USDT" in r.output
    assert "the watchlist is empty" in _run("watchlist", url=sqlite_url).output
    _engine, factory = open_database(sqlite_url)
    with factory() as s:  # the row stays, disabled, so a config seeding cannot bring it back
        [row] = list(s.scalars(select(WatchlistEntry)))
    assert (row.symbol, row.enabled, row.source) == ("ETH/USDT", False, "cli")


def test_cli_watch_rejects_bad_input_in_one_line(sqlite_url: str) -> None:
    r = _run("watch", "BTC/USDT; rm", "--no-validate", url=sqlite_url)
    assert r.exit_code == 1
    assert "bad symbol 'BTC/USDT; rm'" in r.output and "Traceback" not in r.output
    r = _run("watch", "BTC/USDT", "-t", "7x", "--no-validate", url=sqlite_url)
    assert r.exit_code == 1 and "bad timeframe '7x'" in r.output


def test_cli_events_chart_and_console_flush(sqlite_url: str, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # alerts.chart_dir defaults to ./charts
    _run("watch", "BTC/USDT", "--no-validate", url=sqlite_url)
    _engine, factory = open_database(sqlite_url)
    frame = candles(100, start="2020-01-01", spike_at=90)
    events = store(factory, "BTC/USDT", frame, [(90, "zscore", 8.0)])
    r = _run("events", "--symbol", "BTC/USDT", url=sqlite_url)
    assert "BTC/USDT" in r.output and "zscore" in r.output and "2020-01-04 18:00" in r.output and "8 / 4" in r.output

    out = tmp_path / "btc.png"
    r = _run("chart", "BTC/USDT", "--out", str(out), "--period", "3650d", url=sqlite_url)
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:4] == b"\x89PNG"

    with factory.begin() as s:
        evs = list(s.scalars(select(Event).where(Event.id == events[0].id)))
        queue_alerts(s, evs, chat_ids=[0], channel="console", now=frame.index[-1].to_pydatetime())
    r = _run("alerts", "flush", url=sqlite_url)
    assert r.exit_code == 0, r.output
    assert "sent 1, retrying 0, failed 0" in r.output
    assert len(list((tmp_path / "charts").glob("alert-*.png"))) == 1
    with factory() as s:
        assert [(d.channel, d.status) for d in s.scalars(select(Delivery))] == [("console", "sent")]
    assert "sent 0" in _run("alerts", "flush", url=sqlite_url).output
