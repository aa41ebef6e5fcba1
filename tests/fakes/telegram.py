"""A fake Telegram Bot API server (aiohttp.web on 127.0.0.1, port 0) for tests.

It speaks the real HTTP API well enough for python-telegram-bot's
``Application`` to run against it unchanged: point the builder at
``fake.base_url`` / ``fake.base_file_url``. It records every request
(method, decoded parameters, uploaded files, outcome) so tests can assert on
what the bot sent, serves updates through long-polling ``getUpdates``, and
injects failures: HTTP 429 with ``retry_after``, 403, 400, 5xx, or a dropped
connection (no response at all), for the next N calls of a method.

Reusable by other areas' tests (the runtime's end-to-end test)::

    async with FakeTelegram() as tg:
        app = Application.builder().token(tg.token).base_url(tg.base_url)...
        tg.push_command("/status", chat_id=42, user_id=42)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["FakeTelegram", "Injected", "Recorded"]

_RAW_KEYS = {"text", "caption", "callback_query_id", "parse_mode", "url", "description", "short_description"}
_ERRORS = {
    400: "Bad Request: message text is empty",
    403: "Forbidden: bot was blocked by the user",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


@dataclass
class Recorded:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    outcome: str = "ok"  # "ok", "error 429", "dropped"
    at: float = field(default_factory=time.monotonic)


@dataclass
class Injected:
    method: str
    status: int | None  # None = drop the connection without answering; 0 = hang until the client gives up
    times: int = 1
    retry_after: int | None = None
    description: str | None = None
    after_processing: bool = False  # drop only after the request took effect (message recorded as sent)


class FakeTelegram:
    """In-process fake of ``https://api.telegram.org``."""

    def __init__(self, token: str = "123456:TEST-token", *, bot_id: int = 123456, username: str = "vigil_test_bot"):
        self.token = token
        self.bot_id = bot_id
        self.username = username
        self.requests: list[Recorded] = []
        self.injected: list[Injected] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._new_update = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._release = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.commands: list[dict[str, Any]] = []
        self._answered: set[str] = set()
        self.down = False

    # -- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_route("*", "/file/bot{token}/{path:.*}", self._file)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self._site = site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def go_down(self) -> None:
        """Stop listening (new connections are refused) and drop requests on open connections without an
        answer, keeping the port and everything recorded: the Bot API is unreachable."""
        self.down = True
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def come_back(self) -> None:
        """Listen again on the same port, after :meth:`go_down`."""
        assert self._runner is not None and self._site is None
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await self._site.start()
        self.down = False

    async def close(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- test controls -------------------------------------------------------------------------
    def inject(
        self,
        method: str,
        status: int | None,
        *,
        times: int = 1,
        retry_after: int | None = None,
        description: str | None = None,
        after_processing: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        ``status``: an HTTP error code (429 adds ``retry_after``), ``None`` to drop
        the connection without an answer, ``0`` to hang without answering (the
        test then cancels the client, like a process killed mid-request).
        ``after_processing``: for None/0, the request takes effect first (a
        message is sent) and only the answer is lost.
        """
        self.injected.append(Injected(method, status, times, retry_after, description, after_processing))

    def push_update(self, update: dict[str, Any]) -> int:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        task = asyncio.get_running_loop().create_task(self._notify())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return int(update["update_id"])

    async def _notify(self) -> None:
        async with self._new_update:
            self._new_update.notify_all()

    def push_message(
        self, text: str, *, chat_id: int, user_id: int, chat_type: str = "private", username: str = "someone"
    ) -> int:
        """A text message; entities mark a leading ``/command`` (with optional ``@bot``) as a bot command."""
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": chat_type, **({"title": "group"} if chat_type != "private" else {})},
            "from": {"id": user_id, "is_bot": False, "first_name": username, "username": username},
            "text": text,
        }
        if text.startswith("/"):
            msg["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return self.push_update({"message": msg})

    def push_callback(
        self,
        data: str,
        *,
        chat_id: int,
        user_id: int,
        message_id: int = 1,
        chat_type: str = "private",
        message: str = "ok",
    ) -> str:
        """A button press; returns the callback query id.

        ``message``: ``"ok"`` (the message with the button), ``"inaccessible"``
        (too old: Telegram sends only chat and id, with date 0), or ``"none"``
        (an inline message: no message at all, so no chat either).
        """
        query_id = str(next(self._message_ids))
        query: dict[str, Any] = {
            "id": query_id,
            "from": {"id": user_id, "is_bot": False, "first_name": "someone"},
            "chat_instance": "ci",
            "data": data,
        }
        if message == "ok":
            query["message"] = {
                "message_id": message_id,
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": chat_type},
                "from": {"id": self.bot_id, "is_bot": True, "first_name": "vigil"},
                "text": "alert",
            }
        elif message == "inaccessible":
            query["message"] = {"message_id": message_id, "date": 0, "chat": {"id": chat_id, "type": chat_type}}
        else:
            query["inline_message_id"] = f"inline-{query_id}"
        self.push_update({"callback_query": query})
        return query_id

    def answers(self, query_id: str) -> list[Recorded]:
        """Every answerCallbackQuery the bot made for one query (Telegram honours only the first)."""
        return [r for r in self.calls("answerCallbackQuery") if str(r.params.get("callback_query_id")) == query_id]

    def push_membership(self, status: str, *, chat_id: int, user_id: int, chat_type: str = "group") -> int:
        """The bot's own membership in a chat changed (``kicked``, ``left``, ``member``, ``administrator``)."""
        bot = {"id": self.bot_id, "is_bot": True, "first_name": "vigil", "username": self.username}
        new: dict[str, Any] = {"status": status, "user": bot}
        if status == "kicked":
            new["until_date"] = 0
        if status == "administrator":
            new.update(
                {
                    k: True
                    for k in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            )
        change = {
            "chat": {"id": chat_id, "type": chat_type, "title": "group"},
            "from": {"id": user_id, "is_bot": False, "first_name": "someone"},
            "date": int(time.time()),
            "old_chat_member": {"status": "member", "user": bot},
            "new_chat_member": new,
        }
        return self.push_update({"my_chat_member": change})

    def calls(self, method: str | None = None, *, ok_only: bool = False) -> list[Recorded]:
        return [
            r for r in self.requests if (method is None or r.method == method) and (not ok_only or r.outcome == "ok")
        ]

    def sent(self, chat_id: int | None = None) -> list[Recorded]:
        """Messages that went out (sendMessage/sendPhoto answered 200), in order."""
        return [
            r
            for r in self.requests
            if r.method in ("sendMessage", "sendPhoto")
            and r.outcome in ("ok", "dropped-after", "hung-after")
            and (chat_id is None or r.params.get("chat_id") == chat_id)
        ]

    def replies_text(self, chat_id: int | None = None) -> list[str]:
        out = []
        for r in self.requests:
            if r.outcome != "ok" or (chat_id is not None and r.params.get("chat_id") != chat_id):
                continue
            if r.method in ("sendMessage", "editMessageText"):
                out.append(str(r.params.get("text", "")))
            elif r.method == "sendPhoto":
                out.append(str(r.params.get("caption", "")))
            elif r.method == "answerCallbackQuery" and r.params.get("text"):
                out.append(str(r.params["text"]))
        return out

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` is true (polling the recorded state)."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"fake telegram: condition not met in {timeout}s; got {[r.method for r in self.requests]}"
                )
            await asyncio.sleep(0.02)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every pushed update has been fetched by the bot (getUpdates moved past it)."""
        await self.wait_for(lambda: not self._updates, timeout)

    # -- HTTP ----------------------------------------------------------------------------------
    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body or {}), files
        if request.method == "GET":
            form: Any = request.query
        else:
            form = await request.post()
        for key, value in form.items():
            if hasattr(value, "file"):
                files[key] = value.file.read()
                continue
            if key in _RAW_KEYS:
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except (TypeError, ValueError):
                params[key] = value
        return params, files

    def _take_injection(self, method: str) -> Injected | None:
        for inj in self.injected:
            if inj.method == method and inj.times > 0:
                inj.times -= 1
                return inj
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.down:  # a request on a connection opened before the outage: no answer
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params, files = await self._params(request)
        rec = Recorded(method, params, files)
        self.requests.append(rec)
        inj = self._take_injection(method)
        if inj is not None and inj.status == 0:
            if inj.after_processing:
                await self._dispatch(method, params, files)
            rec.outcome = "hung-after" if inj.after_processing else "hung"
            await self._release.wait()  # until close(); the client has long given up
            raise asyncio.CancelledError
        if inj is not None and inj.status is None:
            if inj.after_processing:
                await self._dispatch(method, params, files)
                rec.outcome = "dropped-after"
            else:
                rec.outcome = "dropped"
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # no response at all: the client sees a broken connection
        if inj is not None:
            rec.outcome = f"error {inj.status}"
            description = inj.description or _ERRORS.get(inj.status, "Error").format(retry_after=inj.retry_after)
            body: dict[str, Any] = {"ok": False, "error_code": inj.status, "description": description}
            if inj.retry_after is not None:
                body["parameters"] = {"retry_after": inj.retry_after}
            return web.json_response(body, status=inj.status)
        result = await self._dispatch(method, params, files)
        if result is _ALREADY_ANSWERED:
            rec.outcome = "error 400"
            description = "Bad Request: query is too old and response timeout expired or query ID is invalid"
            return web.json_response({"ok": False, "error_code": 400, "description": description}, status=400)
        if result is _NOT_FOUND:
            rec.outcome = "error 404"
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.json_response({"ok": True, "result": result})

    async def _file(self, request: web.Request) -> web.Response:
        return web.Response(status=404)

    def _message(self, params: dict[str, Any], **extra: Any) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private" if isinstance(chat_id, int) and chat_id > 0 else "group"},
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "vigil", "username": self.username},
            **extra,
        }

    async def _dispatch(self, method: str, params: dict[str, Any], files: dict[str, bytes]) -> Any:
        if method == "getMe":
            return {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "vigil",
                "username": self.username,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method == "getUpdates":
            return await self._get_updates(params)
        if method == "sendMessage":
            return self._message(params, text=params.get("text", ""))
        if method == "sendPhoto":
            photo = [
                {
                    "file_id": f"photo{len(self.requests)}",
                    "file_unique_id": f"u{len(self.requests)}",
                    "width": 800,
                    "height": 600,
                }
            ]
            return self._message(params, photo=photo, caption=params.get("caption", ""))
        if method == "editMessageText":
            msg = self._message(params, text=params.get("text", ""))
            msg["message_id"] = params.get("message_id", msg["message_id"])
            return msg
        if method == "setMyCommands":
            self.commands = list(params.get("commands") or [])
            return True
        if method == "getMyCommands":
            return self.commands
        if method == "answerCallbackQuery":
            query_id = str(params.get("callback_query_id"))
            if query_id in self._answered:  # Telegram accepts one answer per query
                return _ALREADY_ANSWERED
            self._answered.add(query_id)
            return True
        if method in (
            "deleteWebhook",
            "setWebhook",
            "deleteMyCommands",
            "sendChatAction",
            "close",
            "logOut",
        ):
            return True
        if method == "getWebhookInfo":
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        return _NOT_FOUND

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        if offset:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        timeout = min(float(params.get("timeout") or 0), 1.0)
        if not self._updates and timeout > 0:
            async with self._new_update:
                try:
                    await asyncio.wait_for(self._new_update.wait(), timeout)
                except TimeoutError:
                    pass
        limit = int(params.get("limit") or 100)
        return self._updates[:limit]


_NOT_FOUND = object()
_ALREADY_ANSWERED = object()
