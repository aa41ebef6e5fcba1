"""Keep secrets out of log output.

python-telegram-bot puts the token in its request URLs, and logs them at DEBUG
("Set Bot API URL: https://api.telegram.org/bot<token>"); httpx logs every
URL at INFO; exception messages can carry URLs too. Rather than hunt every
logger, :func:`redact_secrets` puts a filter on the root handlers that
rewrites any record (message and traceback text) containing a secret.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

__all__ = ["RedactingFilter", "redact_secrets"]

REDACTED = "<redacted>"


class RedactingFilter(logging.Filter):
    """Replaces each secret in a record's message and traceback with ``<redacted>``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 6]

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._clean(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._clean(record.exc_text)
        return True


def redact_secrets(*secrets: str | None, logger: logging.Logger | None = None) -> RedactingFilter:
    """Install the filter on every handler of ``logger`` (root by default); returns it."""
    target = logger or logging.getLogger()
    filt = RedactingFilter(s for s in secrets if s)
    for handler in target.handlers:
        handler.addFilter(filt)
    return filt
