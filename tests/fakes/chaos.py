"""Fault injection for the soak test: a live one-second exchange and a Bot API that misbehave at random.

All faults live here, in the fakes; the product runs unchanged. Both fakes draw from one
seeded :class:`Chaos`, so a run's faults are reproducible from its seed (request order
still depends on timing) and counted per kind for the report.

* :class:`LiveFakeBinance` serves one-second bars up to the current second for any time
  range, computed from the bar's own open time (:func:`live_bar`), so every answer about a
  bar is the same bar and a test can recompute what must have been stored. Volume spikes
  sit at known seconds per symbol. Kline requests fail at random: 429, 5xx, a stall past
  ccxt's timeout, or a body that is not JSON.
* :class:`ChaoticTelegram` answers Bot API calls with 429 (``retry_after``), 5xx, a dropped
  connection (before or after the message took effect) or an HTML page instead of JSON.
  Start-up calls (``getMe``, ``setMyCommands``, ``deleteWebhook``) are left alone: how the
  bot starts without Telegram is a separate concern.
* :func:`outsider_update` makes a random update from a chat and user outside the allowlist:
  commands (with hostile arguments), plain text, button presses with forged data, edits and
  membership changes.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from aiohttp import web

from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeTelegram, Injected, Recorded

__all__ = ["Chaos", "ChaoticTelegram", "LiveFakeBinance", "SPIKES", "live_bar", "outsider_update"]

#: symbol -> (period s, offset s): the volume of bar k is x40 when k % period == offset
SPIKES = {"AAA/USDT": (29, 5), "BBB/USDT": (37, 11), "CCC/USDT": (43, 17)}
_SEEDS = {"AAA/USDT": 1, "BBB/USDT": 2, "CCC/USDT": 3}


def _uniform(k: np.ndarray, seed: int) -> np.ndarray:
    """A deterministic value in [0, 1) per integer ``k`` (a multiplicative hash, vectorised)."""
    x = (k.astype(np.uint64) * np.uint64(2654435761) + np.uint64(seed * 40503)) % np.uint64(2**32)
    x = (x * np.uint64(2246822519) + np.uint64(seed)) % np.uint64(2**32)
    return x.astype(np.float64) / 2**32


def live_bar(symbol: str, ts_ms: np.ndarray) -> pd.DataFrame:
    """The bars that open at ``ts_ms`` (whole seconds): the same values whenever they are asked for."""
    k = np.asarray(ts_ms, dtype=np.int64) // 1000
    seed = _SEEDS[symbol]

    def close(j: np.ndarray) -> np.ndarray:
        return 100.0 * (1 + 0.004 * np.sin(j / 17.0 + seed) + 0.001 * (_uniform(j, seed) - 0.5))

    c, o = close(k), close(k - 1)
    volume = 100.0 + 20.0 * _uniform(k, seed + 7)
    period, offset = SPIKES[symbol]
    volume = np.where(k % period == offset, volume * 40.0, volume)
    index = pd.DatetimeIndex(pd.to_datetime(k * 1000, unit="ms", utc=True), name="time").as_unit("ms")
    return pd.DataFrame(
        {"open": o, "high": np.maximum(o, c) * 1.0005, "low": np.minimum(o, c) * 0.9995, "close": c, "volume": volume},
        index=index,
    )


@dataclass
class Chaos:
    """The seeded source of faults and their tally; ``enabled = False`` ends the outage."""

    seed: int
    exchange_rate: float = 0.1
    telegram_rate: float = 0.08
    enabled: bool = True
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def draw(self, rate: float, kinds: list[str], weights: list[float]) -> str | None:
        if not self.enabled or self.rng.random() >= rate:
            return None
        kind = self.rng.choices(kinds, weights)[0]
        self.counts[kind] += 1
        return kind


class LiveFakeBinance(FakeBinance):
    """Binance REST with one-second bars up to now, and random failures of ``klines``."""

    def __init__(self, symbols: list[str], chaos: Chaos, *, history_s: int = 900) -> None:
        super().__init__(timeframe="1s", extra_symbols=symbols)
        self.live_symbols = list(symbols)
        self.chaos = chaos
        self.origin_ms = (int(time.time()) - history_s) * 1000

    def _frame_for(self, symbol: str, interval: str) -> pd.DataFrame:
        if symbol not in self.live_symbols or interval != "1s":
            return super()._frame_for(symbol, interval)
        now_ms = int(time.time()) * 1000  # the bar opening now is served too: it is still open
        return live_bar(symbol, np.arange(self.origin_ms, now_ms + 1, 1000, dtype=np.int64))

    async def _answer(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/api/v3/klines":
            kind = self.chaos.draw(
                self.chaos.exchange_rate,
                ["exchange 429", "exchange 5xx", "exchange timeout", "exchange malformed"],
                [3, 3, 1, 2],
            )
            if kind == "exchange 429":
                return web.json_response(
                    {"code": -1003, "msg": "Too many requests."}, status=429, headers={"Retry-After": "1"}
                )
            if kind == "exchange 5xx":
                return web.Response(status=self.chaos.rng.choice([500, 502, 503]), text="Service Unavailable")
            if kind == "exchange timeout":
                await asyncio.sleep(2.5)  # past the client's 2 s timeout
            if kind == "exchange malformed":
                return web.Response(status=200, text="<html><body>maintenance</body></html>", content_type="text/html")
        return await super()._answer(request, handler)


_QUIET = {"getMe", "setMyCommands", "deleteWebhook", "getMyCommands", "getWebhookInfo", "close", "logOut"}


class ChaoticTelegram(FakeTelegram):
    """The fake Bot API, answering at random with 429, 5xx, a dropped connection or an HTML page."""

    def __init__(self, chaos: Chaos, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chaos = chaos

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        self.injected = [i for i in self.injected if i.times > 0]
        if request.match_info["token"] == self.token and method not in _QUIET:
            kind = self.chaos.draw(
                self.chaos.telegram_rate,
                ["telegram 429", "telegram 5xx", "telegram dropped", "telegram dropped after sending", "telegram html"],
                [3, 3, 2, 1, 2],
            )
            if kind == "telegram html":  # a proxy's error page: not JSON at all
                params, files = await self._params(request)
                self.requests.append(Recorded(method, params, files, outcome="html"))
                return web.Response(status=502, text="<html><h1>502 Bad Gateway</h1></html>", content_type="text/html")
            fault = {
                "telegram 429": Injected(method, 429, retry_after=1),
                "telegram 5xx": Injected(method, self.chaos.rng.choice([500, 502])),
                "telegram dropped": Injected(method, None),
                "telegram dropped after sending": Injected(method, None, after_processing=True),
            }.get(kind or "")
            if fault is not None:
                self.injected.insert(0, fault)  # taken by this request (or one of the same method racing it)
        return await super()._handle(request)


# -- updates from outside the allowlist ---------------------------------------------------------------------------
_COMMANDS = [
    "/start",
    "/help",
    "/watch DOGE/USDT",
    "/watch AAA/USDT 1s",
    "/unwatch AAA/USDT",
    "/threshold * zscore 1e-320",
    "/threshold AAA/USDT zscore 0.5",
    "/detectors * zscore off",
    "/mute 30d",
    "/unmute",
    "/chart AAA/USDT 90d",
    "/backtest AAA/USDT fixed_hold 3650d",
    "/events AAA/USDT 50",
    "/status",
    "/list",
    "/x" + "A" * 60,
]
_HOSTILE = ["<b>x</b>", "' OR 1=1 --", "\u202e", "💥" * 20, "../../etc/passwd", "%s%s%n", "1e309", "-0", "nan"]


def outsider_update(tg: FakeTelegram, rng: random.Random, allowed: set[int], admins: set[int]) -> str:
    """Push one random update from a chat/user outside the allowlist; returns its kind."""
    while True:
        chat = rng.choice([rng.randint(10_000, 10**9), -rng.randint(10**12, 2 * 10**12)])
        user = rng.randint(10_000, 10**9)
        if chat not in allowed and user not in admins:
            break
    chat_type = "private" if chat > 0 else rng.choice(["group", "supergroup"])
    kind = rng.choices(["command", "text", "button", "membership", "edited"], [6, 2, 3, 1, 1])[0]
    if kind == "command":
        text = rng.choice(_COMMANDS)
        if rng.random() < 0.4:
            text += " " + rng.choice(_HOSTILE)
        if chat_type != "private" and rng.random() < 0.3:
            head, _, rest = text.partition(" ")
            text = f"{head}@{tg.username} {rest}".strip()
        tg.push_message(text, chat_id=chat, user_id=user, chat_type=chat_type)
    elif kind == "text":
        tg.push_message(rng.choice(_HOSTILE), chat_id=chat, user_id=user, chat_type=chat_type)
    elif kind == "button":
        data = rng.choice([f"v1:{rng.choice('mcbd')}:{rng.randint(1, 50)}", "v0:m:1", "x" * 64, ""])
        tg.push_callback(data, chat_id=chat, user_id=user, chat_type=chat_type)
    elif kind == "membership":
        tg.push_membership(rng.choice(["kicked", "left", "member"]), chat_id=-abs(chat), user_id=user)
    else:
        msg = {
            "message_id": rng.randint(1, 10**6),
            "date": int(time.time()),
            "edit_date": int(time.time()),
            "chat": {"id": chat, "type": chat_type},
            "from": {"id": user, "is_bot": False, "first_name": "x"},
            "text": "/watch BTC/USDT",
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        }
        tg.push_update({"edited_message": msg})
    return kind
