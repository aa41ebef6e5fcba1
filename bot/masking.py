"""The one place that decides what a secret looks like and hides it from any text vigil prints or logs.

Every line that leaves the process (log records in text or JSON, the one-line
error of a command, Python's excepthook, asyncio's exception handler) passes
through :func:`mask`, which hides:

- every secret of the loaded config (the bot token, the database URL's
  password, every ccxt credential) and the secret environment variables,
  registered once with :func:`register_secrets` (literal match);
- anything shaped like a Telegram bot token (``123456789:AAH...``), wherever
  it came from: python-telegram-bot puts the token in request URLs and in
  ``InvalidToken("The token `...` was rejected")``;
- the password of any URL (``postgresql://user:pw@host``);
- the value after a credential key (``apiKey=...``, ``"secret": "..."``,
  ``X-MBX-APIKEY: ...``), as ccxt and HTTP libraries print them.

Pure string work and a process-wide registry: the logging filter, the CLI
guard and the hooks all consult the same registry, so a secret registered when
the config is loaded is hidden everywhere from then on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, SecretStr

__all__ = [
    "CCXT_CREDENTIAL_KEYS",
    "MASK",
    "config_secrets",
    "env_secrets",
    "mask",
    "one_line",
    "register_secrets",
    "registered_secrets",
]

MASK = "***"
#: The constructor keys ccxt reads credentials from (``Exchange.requiredCredentials``).
CCXT_CREDENTIAL_KEYS = (
    "apiKey",
    "secret",
    "password",
    "uid",
    "login",
    "twofa",
    "privateKey",
    "walletAddress",
    "token",
    "accountId",
)
_MIN_LITERAL = 4  # shorter "secrets" would mask ordinary words and digits
_MAX_LINE = 1000

_BOT_TOKEN = re.compile(r"(?<![0-9])\d{5,}:[A-Za-z0-9_-]{20,}")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s'\"]*):([^@\s'\"/]+)@")
_KEYS = "|".join(
    [*CCXT_CREDENTIAL_KEYS, "api_key", "apikey", "api-key", "x-mbx-apikey", "passwd", "private_key", "signature"]
)
# key=value (query strings, kwargs) or "key": "value" / 'key': 'value' (dict reprs, JSON). Bare ``key: value``
# is left alone: it is how vigil's own errors name a config key ("telegram.token: not set").
_KEY_VALUE = re.compile(
    rf"(?i)(?P<head>(?<![A-Za-z0-9_])(?:{_KEYS})=)(?P<value>[^\s&,;'\"]+)"
    rf"|(?P<qhead>[\"'](?:{_KEYS})[\"']\s*:\s*[\"'])(?P<qvalue>[^\"']+)"
    rf"|(?P<hhead>(?i:x-mbx-apikey)\s*:\s*)(?P<hvalue>\S+)"
)

_registered: set[str] = set()

#: Environment variables whose whole value is a secret (exchange credentials are found by prefix).
SECRET_ENV = ("VIGIL_TELEGRAM_TOKEN",)
_EXCHANGE_ENV = re.compile(r"^VIGIL_EXCHANGE_[A-Z0-9_]+_(API_KEY|SECRET|PASSWORD|UID|PRIVATE_KEY)$")


def register_secrets(values: Iterable[str | None]) -> None:
    """Add literal secrets that :func:`mask` hides from now on (empty and very short values are ignored)."""
    for value in values:
        if value and len(value) >= _MIN_LITERAL:
            _registered.add(value)


def registered_secrets() -> tuple[str, ...]:
    return tuple(_registered)


def _replace_literals(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(set(secrets), key=len, reverse=True):  # longest first: a secret may contain another
        if secret and len(secret) >= _MIN_LITERAL and secret in text:
            text = text.replace(secret, MASK)
    return text


def _key_value(match: re.Match[str]) -> str:
    head = match.group("head") or match.group("qhead") or match.group("hhead")
    return f"{head}{MASK}"


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every registered or given secret, token shape, URL password and credential value hidden."""
    text = _replace_literals(text, (*_registered, *secrets))
    text = _BOT_TOKEN.sub(MASK, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    return _KEY_VALUE.sub(_key_value, text)


def one_line(text: str, limit: int = _MAX_LINE) -> str:
    """Lines joined with ``; ``, whitespace collapsed, cut at ``limit`` characters."""
    parts = [" ".join(line.split()) for line in str(text).splitlines()]
    line = "; ".join(p for p in parts if p) or "(no message)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _secret_values(value: Any) -> Iterable[str]:
    """Every ``SecretStr`` inside a config model (nested models, dicts, lists), unwrapped."""
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        yield raw
        # the password alone too: drivers and tracebacks print it without the rest of the URL
        found = _URL_PASSWORD.search(raw)
        if found:
            yield found.group(2)
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _secret_values(item)


def config_secrets(cfg: Any) -> list[str]:
    """Every secret a config holds (all its ``SecretStr`` fields: token, database URL and password, credentials)."""
    return [v for v in _secret_values(cfg) if v]


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secrets given in the environment, known even when the config they were meant for fails to load."""
    env = os.environ if environ is None else environ
    out = [env[name] for name in SECRET_ENV if env.get(name)]
    out += [v for k, v in env.items() if _EXCHANGE_ENV.match(k) and v]
    url = env.get("VIGIL_DATABASE_URL", "")
    found = _URL_PASSWORD.search(url)
    if found:
        out.append(found.group(2))
    return out
