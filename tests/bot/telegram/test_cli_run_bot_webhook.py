"""``vigil bot`` in webhook mode: registers the webhook with a secret, answers updates that carry it."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.cli.watchlist import webhook_secret
from tests.bot.telegram.conftest import ADMIN
from tests.fakes.telegram import FakeTelegram

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _update(text: str) -> dict[str, object]:
    chat = {"id": ADMIN, "type": "private"}
    msg = {
        "message_id": 1, "date": int(time.time()), "chat": chat, "text": text,
        "from": {"id": ADMIN, "is_bot": False, "first_name": "a"},
        "entities": [{"type": "bot_command", "offset": 0, "length": len(text)}],
    }  # fmt: skip
    return {"update_id": 1, "message": msg}


@pytest.mark.slow
async def test_vigil_bot_webhook_mode_checks_the_secret(tg: FakeTelegram, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/tg-hook"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "vigil.db"}"
[telegram]
token = "{tg.token}"
base_url = "{tg.base_url}"
allowed_chat_ids = [{ADMIN}]
mode = "webhook"
webhook_url = "{url}"
webhook_listen = "127.0.0.1"
webhook_port = {port}
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "bot", "--config", str(cfg),
        cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await tg.wait_for(lambda: tg.calls("setWebhook"), timeout=60)
        hook = tg.calls("setWebhook")[-1].params
        assert hook["url"] == url and hook["secret_token"] == webhook_secret(tg.token)
        async with aiohttp.ClientSession() as http:
            for _ in range(100):  # the webhook server comes up right after setWebhook
                try:
                    async with http.post(
                        url, json=_update("/start"), headers={"X-Telegram-Bot-Api-Secret-Token": "forged"}
                    ) as r:
                        assert r.status == 403
                    break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.1)
            headers = {"X-Telegram-Bot-Api-Secret-Token": hook["secret_token"]}
            async with http.post(
                url, data=json.dumps(_update("/start")), headers={**headers, "Content-Type": "application/json"}
            ) as r:
                assert r.status == 200
        await tg.wait_for(lambda: tg.replies_text(ADMIN), timeout=30)
        assert len(tg.replies_text(ADMIN)) == 1 and tg.replies_text(ADMIN)[0].startswith("vigil watches")
        proc.send_signal(signal.SIGINT)
        _out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
