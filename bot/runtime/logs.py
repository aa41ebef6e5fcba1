"""Logging set-up: plain text by default, one JSON object per line on request.

Secrets must never reach a log line, whichever library writes it. The
python-telegram-bot and httpx loggers print request URLs, and a Bot API URL
contains the token (``/bot<TOKEN>/sendMessage``), so every handler gets a
filter that masks them. What counts as a secret is decided in one place,
:mod:`bot.masking`; this module only applies it to log records.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from bot.masking import config_secrets, mask, register_secrets

__all__ = ["RedactingFilter", "config_secrets", "configure_logging", "configured_format", "redact"]

_configured_format: str | None = None


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret masked (:func:`bot.masking.mask`)."""
    return mask(text, secrets)


def configured_format() -> str | None:
    """``"text"`` or ``"json"`` once :func:`configure_logging` ran in this process, else None."""
    return _configured_format


class RedactingFilter(logging.Filter):
    """Masks secrets in the fully formatted message of every record.

    A record carrying an *expected* failure (:func:`bot.toplevel.expected`: a rejected token, an
    unreachable server, a locked database, bad input) keeps one line: its message plus the
    failure's one-line description; the traceback is kept (masked) for bugs, and for everything
    when the root logger is at DEBUG.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            from bot.toplevel import describe, expected

            exc = record.exc_info[1]
            if expected(exc) and not logging.getLogger().isEnabledFor(logging.DEBUG):
                record.msg, record.args = f"{record.getMessage()}: {describe(exc)}", None
                record.exc_text = None
            else:  # rendered later by the formatter: pre-render and mask it
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info), self.secrets)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in ("symbol", "exchange", "timeframe", "detector", "cycle_id", "duration_s"):
            if hasattr(record, key):
                payload[key] = getattr(record, key)
        if record.exc_text:
            payload["exc"] = record.exc_text
        elif record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Install one stderr handler on the root logger, with redaction; ``secrets`` are registered for every output."""
    global _configured_format
    register_secrets(secrets)
    _configured_format = fmt
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Chatty libraries: their INFO lines carry request URLs and add nothing for users.
    for name in ("httpx", "telegram.ext.Updater", "apscheduler.executors.default", "apscheduler.scheduler"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
