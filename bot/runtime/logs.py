"""Logging set-up: plain text by default, one JSON object per line on request.

Secrets must never reach a log line, whichever library writes it. The
python-telegram-bot and httpx loggers print request URLs, and a Bot API URL
contains the token (``/bot<TOKEN>/sendMessage``), so every handler gets a
filter that masks the configured secrets and anything shaped like a bot token.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

__all__ = ["RedactingFilter", "config_secrets", "configure_logging", "redact"]

_BOT_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{20,}")
_MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret and every bot-token-shaped string masked."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, _MASK)
    return _BOT_TOKEN.sub(_MASK, text)


class RedactingFilter(logging.Filter):
    """Masks secrets in the fully formatted message of every record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exceptions are rendered later by the formatter; pre-render and mask them.
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


def config_secrets(cfg: Any) -> list[str]:
    """Every secret a config holds: the bot token and exchange credentials."""
    token = cfg.telegram.token
    out = [token.get_secret_value()] if token is not None else []
    for ex in cfg.exchanges.values():
        out += [str(v) for k, v in ex.ccxt_config.items() if k in {"apiKey", "secret", "password", "uid"} and v]
    return out


def configure_logging(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    """Install one stderr handler on the root logger, with redaction."""
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
