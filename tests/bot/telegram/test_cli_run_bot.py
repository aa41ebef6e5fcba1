"""``vigil bot`` as a real process against the fake Bot API: answers, stops on SIGINT, never logs the token."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.bot.telegram.conftest import ADMIN
from tests.bot.telegram.helpers import say
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.slow
async def test_vigil_bot_process_answers_and_stops_cleanly(tg: FakeTelegram, tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "vigil.db"}"
[telegram]
token = "{tg.token}"
base_url = "{tg.base_url}"
base_file_url = "{tg.base_file_url}"
allowed_chat_ids = [{ADMIN}]
admin_user_ids = [{ADMIN}]
[logging]
level = "DEBUG"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "bot", "--config", str(cfg),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await tg.wait_for(lambda: tg.calls("setMyCommands"), timeout=60)
        [reply] = await say(tg, "/start", chat_id=ADMIN)
        assert reply.startswith("vigil watches crypto markets")
        proc.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    logs = (out + err).decode()
    assert "ready: 13 commands" in logs
    assert tg.token not in logs and tg.token.split(":")[1] not in logs
