"""The one place where an exception that reached the top becomes one line, secrets masked.

Whatever escapes a command (``vigil run``, ``vigil bot``, ``vigil alerts
flush``, any CLI command through :class:`bot.cli.common.GuardedGroup`), an
asyncio task nobody awaited, a worker thread, or the interpreter itself
(``sys.excepthook``) ends here:

- :func:`describe` turns it into one line that says what happened and what
  to do: vigil's own errors as they are, python-telegram-bot's (a rejected
  token, an unreachable Bot API) and SQLAlchemy's (locked, read-only, missing
  table: :func:`storage.errors.database_error`) translated, anything else as
  ``unexpected <Type>: <message>``;
- :func:`report` writes it to stderr: ``error: <line>``, or one JSON object
  when ``logging.format = "json"`` is configured;
- :func:`install` routes ``sys.excepthook``, ``threading.excepthook`` and
  every new asyncio loop's exception handler through the same path.

Every line passes :func:`bot.masking.mask` first. The traceback is shown
(masked) only with ``VIGIL_DEBUG=1``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from bot.masking import env_secrets, mask, one_line, register_secrets
from core.errors import BotError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "asyncio_handler",
    "describe",
    "exit_code",
    "expected",
    "install",
    "report",
]

log = logging.getLogger("vigil")

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


def _telegram(exc: BaseException) -> str | None:
    """python-telegram-bot's errors, said in vigil's words (None when ``exc`` is not one)."""
    if not type(exc).__module__.startswith("telegram"):
        return None
    from telegram import error as tg

    if isinstance(exc, tg.InvalidToken):
        return "Telegram rejected the bot token (telegram.token / VIGIL_TELEGRAM_TOKEN): check it with @BotFather"
    if isinstance(exc, tg.Forbidden):
        return f"Telegram refused the request: {exc.message}"
    if isinstance(exc, tg.RetryAfter):
        return f"Telegram asks to wait before retrying: {exc.message}"
    if isinstance(exc, tg.BadRequest):
        return f"Telegram refused a request as malformed: {exc.message}"
    if isinstance(exc, tg.TimedOut | tg.NetworkError):
        return (
            f"cannot reach the Telegram Bot API ({exc.message}); "
            "check the network and telegram.base_url, then start again"
        )
    if isinstance(exc, tg.TelegramError):
        return f"Telegram error: {exc.message}"
    return None


def describe(exc: BaseException) -> str:
    """One masked line saying what went wrong (and, for the known cases, what to do)."""
    text: str | None
    if isinstance(exc, BotError):
        text = str(exc)
    elif isinstance(exc, KeyboardInterrupt):
        text = "interrupted"
    else:
        text = _telegram(exc)
        if text is None and type(exc).__module__.startswith("sqlalchemy"):
            from storage.errors import database_error

            text = str(database_error(exc))
        if text is None and isinstance(exc, MemoryError):
            text = "out of memory"
        if text is None and isinstance(exc, OSError) and exc.strerror:
            where = f": {exc.filename}" if exc.filename else ""
            text = f"{exc.strerror}{where}"
        if text is None:
            detail = str(exc)
            text = f"unexpected {type(exc).__name__}" + (f": {detail}" if detail else "")
            text += " (a bug in vigil? VIGIL_DEBUG=1 shows the traceback)"
    return one_line(mask(text))


def expected(exc: BaseException) -> bool:
    """A failure a user or operator can fix (bad input, a rejected token, an unreachable server, a locked
    database): its one line says everything, a traceback would only bury it. Anything else is a bug."""
    if isinstance(exc, BotError | KeyboardInterrupt | MemoryError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, json.JSONDecodeError):  # a proxy's HTML page where a JSON answer was due
        return True
    module = type(exc).__module__
    if module.startswith(("telegram", "ccxt", "httpx", "httpcore", "aiohttp")):  # the network said no
        return True
    if module.startswith("sqlalchemy"):
        return type(exc).__name__ in {"OperationalError", "ProgrammingError", "IntegrityError", "InterfaceError"}
    return False


def exit_code(exc: BaseException) -> int:
    return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_ERROR


def _json_wanted() -> bool:
    from bot.runtime.logs import configured_format

    fmt = configured_format() or os.environ.get("VIGIL_LOG_FORMAT", "text")
    return fmt == "json"


def report(exc: BaseException, *, printer: Callable[[str], None] | None = None) -> None:
    """Write the one line for ``exc`` to stderr (JSON when JSON logs are configured)."""
    register_secrets(env_secrets())  # known even when the config that holds them failed to load
    line = describe(exc)
    if _json_wanted():
        payload = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "ERROR",
            "logger": "vigil",
            "msg": line,
        }
        sys.stderr.write(json.dumps(payload) + "\n")
    elif printer is not None:
        printer(line)
    else:
        sys.stderr.write(f"error: {line}\n")
    if os.environ.get("VIGIL_DEBUG"):
        sys.stderr.write(mask("".join(traceback.format_exception(exc))))
    sys.stderr.flush()


def _excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    report(exc)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
        log.error("thread %s failed: %s", getattr(args.thread, "name", "?"), describe(args.exc_value))


def asyncio_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An asyncio loop's exception handler: one masked log line (the traceback at DEBUG level only)."""
    exc = context.get("exception")
    what = one_line(mask(str(context.get("message") or "unhandled error in the event loop")), 200)
    if exc is None:
        log.error("%s", what)
        return
    log.error("%s: %s", what, describe(exc))
    if log.isEnabledFor(logging.DEBUG):
        log.debug("traceback: %s", mask("".join(traceback.format_exception(exc))))


class _GuardedLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """Every loop this process creates (``asyncio.run``, python-telegram-bot's) reports via :func:`asyncio_handler`."""

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()
        loop.set_exception_handler(asyncio_handler)
        return loop


def install() -> None:
    """Route the interpreter's, threads' and asyncio's last-resort handlers through :func:`report`."""
    register_secrets(env_secrets())
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    asyncio.set_event_loop_policy(_GuardedLoopPolicy())
