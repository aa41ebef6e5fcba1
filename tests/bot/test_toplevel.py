"""Issue 17, failure 1: whatever reaches the top is one line, secrets masked, in text and JSON.

The subprocess tests run the real ``vigil`` entry point (``python -m bot``)
against the fake Bot API, which answers 401 to a token it does not know, as
Telegram does; python-telegram-bot then raises ``InvalidToken`` with the
token in its message.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"  # the fake knows another one: 401


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update({"NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", **extra})
    return env


async def _vigil(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env=env,
        cwd=str(cwd),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _error_lines(stderr: str) -> list[str]:
    """stderr without the INFO lines of a configured logger (alembic's 'Context impl')."""
    return [line for line in stderr.splitlines() if line.strip() and " INFO " not in line and '"INFO"' not in line]


def test_python_excepthook_prints_one_masked_line(tmp_path: Path) -> None:
    import subprocess

    code = f"from bot.toplevel import install; install(); raise RuntimeError('calling /bot{TOKEN}/getMe\\nfailed')"
    r = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 1
    assert TOKEN not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("error: unexpected RuntimeError")


def _bot_env(tg: FakeTelegram, tmp_path: Path, fmt: str, base_url: str | None = None) -> dict[str, str]:
    return _env(
        VIGIL_DATABASE_URL=f"sqlite:///{tmp_path / 'v.db'}",
        VIGIL_TELEGRAM_TOKEN=TOKEN,
        VIGIL_TELEGRAM_BASE_URL=base_url or tg.base_url,
        VIGIL_TELEGRAM_ALLOWED_CHAT_IDS="42",
        VIGIL_LOG_FORMAT=fmt,
    )


def _assert_one_masked_line(rc: int, out: str, err: str, fmt: str, expect: str) -> None:
    assert rc == 1, err
    assert TOKEN not in out + err and TOKEN.split(":")[1] not in out + err
    assert "Traceback" not in err
    last = _error_lines(err)[-1]
    if fmt == "json":
        for line in _error_lines(err):
            json.loads(line)  # every line a JSON object
        assert expect in json.loads(last)["msg"]
    else:
        assert last.startswith("error: ") and expect in last


@pytest.mark.parametrize("fmt", ["text", pytest.param("json", marks=pytest.mark.slow)])
async def test_alerts_flush_with_rejected_token_is_one_masked_line(tmp_path: Path, fmt: str) -> None:
    async with FakeTelegram() as tg:
        rc, out, err = await _vigil(["alerts", "flush"], _bot_env(tg, tmp_path, fmt), tmp_path)
    _assert_one_masked_line(rc, out, err, fmt, "Telegram rejected the bot token")
    assert len(_error_lines(err)) == 1, err


@pytest.mark.slow
async def test_bot_with_rejected_token_ends_in_one_masked_line(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        rc, out, err = await _vigil(["bot"], _bot_env(tg, tmp_path, "text"), tmp_path)
    _assert_one_masked_line(rc, out, err, "text", "Telegram rejected the bot token")


@pytest.mark.slow
async def test_run_with_rejected_token_stays_up_and_logs_it_masked(tmp_path: Path) -> None:
    """``vigil run`` keeps watching with Telegram offline (issue 21); the refusal is one masked JSON log line."""
    import signal

    log = tmp_path / "run.log"
    async with FakeTelegram() as tg:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            "--models",
            "m",
            env=_bot_env(tg, tmp_path, "json"),
            cwd=str(tmp_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        try:
            for _ in range(600):  # until the refusal is logged (a bound, not a timing assertion)
                if "rejected" in log.read_text() or proc.returncode is not None:
                    break
                await asyncio.sleep(0.2)
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), timeout=60)
    text = log.read_text()
    assert proc.returncode == 0, text[-2000:]
    assert TOKEN not in text and TOKEN.split(":")[1] not in text and "Traceback" not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line one JSON object
    assert any("rejected" in line["msg"] for line in lines)


@pytest.mark.slow
async def test_unreachable_telegram_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with FakeTelegram() as tg:
        env = _bot_env(tg, tmp_path, "text", base_url=f"http://127.0.0.1:{port}/bot")
        rc, out, err = await _vigil(["alerts", "flush"], env, tmp_path)
    _assert_one_masked_line(rc, out, err, "text", "cannot reach the Telegram Bot API")
