"""The watchlist table as the one source of truth: seeding, removal that sticks, origins."""

from __future__ import annotations

from typer.testing import CliRunner

from bot.cli import app
from storage.db import open_database
from storage.models import WatchlistEntry, utcnow
from storage.watchlist import add_watch, enabled_markets, list_watch, record_checks, remove_watch, seed_watchlist

BTC = ("binance", "BTC/USDT", "1h")
ETH = ("binance", "ETH/USDT", "1h")


def test_seeding_inserts_only_markets_never_seen(session_factory) -> None:
    with session_factory.begin() as s:
        assert seed_watchlist(s, [BTC, ETH]) == [BTC, ETH]
    with session_factory.begin() as s:
        assert seed_watchlist(s, [BTC, ETH]) == []  # a second start adds nothing
        assert {(e.symbol, e.source) for e in list_watch(s)} == {("BTC/USDT", "config"), ("ETH/USDT", "config")}


def test_a_removed_config_market_is_not_seeded_again(session_factory) -> None:
    with session_factory.begin() as s:
        seed_watchlist(s, [BTC, ETH])
        assert remove_watch(s, "BTC/USDT") == 1
        assert remove_watch(s, "BTC/USDT") == 0  # already gone
    with session_factory.begin() as s:
        assert seed_watchlist(s, [BTC, ETH]) == []
        assert enabled_markets(s) == [ETH]
        entry, created = add_watch(s, *BTC, added_by=7, source="chat")  # someone adds it again: theirs now
        assert created and (entry.source, entry.added_by, entry.enabled) == ("chat", 7, True)


def test_record_checks_never_adds_or_revives_rows(session_factory) -> None:
    with session_factory.begin() as s:
        seed_watchlist(s, [BTC])
        remove_watch(s, "BTC/USDT")
        record_checks(s, "1h", [BTC, ETH], {BTC: "boom"}, utcnow())
    with session_factory() as s:
        rows = s.query(WatchlistEntry).all()
    assert [(r.symbol, r.enabled, r.last_error) for r in rows] == [("BTC/USDT", False, "boom")]


def test_rows_from_before_origins_were_recorded_are_claimed_by_the_config(session_factory) -> None:
    with session_factory.begin() as s:
        s.add(WatchlistEntry(exchange="binance", symbol="BTC/USDT", timeframe="1h"))
        s.add(WatchlistEntry(exchange="binance", symbol="DOGE/USDT", timeframe="1h"))
    with session_factory.begin() as s:
        assert seed_watchlist(s, [BTC]) == []
        assert {e.symbol: e.source for e in list_watch(s)} == {"BTC/USDT": "config", "DOGE/USDT": None}


def test_db_upgrade_seeds_the_watchlist_from_the_config(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'v.db'}"
    cfg = tmp_path / "config.toml"
    cfg.write_text('[[watchlist]]\nexchange = "binance"\nsymbol = "BTC/USDT"\ntimeframe = "4h"\n', encoding="utf-8")
    r = CliRunner().invoke(app, ["db", "upgrade", "--config", str(cfg), "--db", url])
    assert r.exit_code == 0, r.output
    assert "1 market(s) from the config" in r.output
    _engine, factory = open_database(url)
    with factory() as s:
        assert enabled_markets(s) == [("binance", "BTC/USDT", "4h")]
