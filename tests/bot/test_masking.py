"""Masking and the one-line description of any failure (bot.masking, bot.toplevel): the pure parts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from bot.masking import mask, one_line
from bot.toplevel import asyncio_handler, describe

TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"


def test_mask_hides_token_shape_url_password_and_credential_values() -> None:
    text = (
        f"POST https://api.telegram.org/bot{TOKEN}/getMe failed; "
        "db postgresql+psycopg://vigil:hunter2pw@db:5432/v; "
        "ccxt {'apiKey': 'AKIAXYZ123', 'secret': 'shhh-very'} url?apiKey=QQQ111&x=1; X-MBX-APIKEY: HDRKEY99"
    )
    out = mask(text)
    for secret in (TOKEN, "hunter2pw", "AKIAXYZ123", "shhh-very", "QQQ111", "HDRKEY99"):
        assert secret not in out
    assert "postgresql+psycopg://vigil:***@db:5432/v" in out
    assert mask("plain words", ["words"]) == "plain ***"


def test_mask_leaves_vigils_own_key_names_readable() -> None:
    message = "telegram.token: not set (set it in the config or VIGIL_TELEGRAM_TOKEN)"
    assert mask(message) == message


def test_one_line_joins_lines_and_caps_length() -> None:
    assert one_line("a\n\n  b   c\n") == "a; b c"
    assert len(one_line("x" * 5000)) == 1000


def test_describe_turns_library_errors_into_advice() -> None:
    from telegram.error import InvalidToken, NetworkError

    line = describe(InvalidToken(f"The token `{TOKEN}` was rejected by the server."))
    assert TOKEN not in line and "rejected the bot token" in line
    assert "cannot reach the Telegram Bot API" in describe(NetworkError("httpx.ConnectError: refused"))
    assert "\n" not in describe(RuntimeError(f"line one\nline two {TOKEN}"))
    assert TOKEN not in describe(RuntimeError(f"boom {TOKEN}"))


def test_asyncio_handler_logs_one_masked_line(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="vigil"):
            asyncio_handler(loop, {"message": "Task exception was never retrieved", "exception": KeyError(TOKEN)})
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil"]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert TOKEN not in caplog.text and "never retrieved" in lines[0]
    assert all(r.exc_info is None for r in caplog.records)


def test_database_error_description_has_no_sql_or_values(tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO candles (a) VALUES (:v)"), {"v": "row-value-42"})
    except OperationalError as err:
        line = describe(err)
    assert line.startswith("table 'candles' is missing") and "vigil db upgrade" in line
    assert "INSERT" not in line and "row-value-42" not in line
