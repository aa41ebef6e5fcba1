"""Typed, validated configuration.

The TOML file is parsed with ``tomllib`` and validated by pydantic models that
forbid unknown keys, so a typo such as ``tokn = "..."`` stops start-up with a
message naming the key instead of being silently ignored. Every error is turned
into a :class:`~core.errors.ConfigError` of the form
``config.toml: telegram.allowed_chat_ids[1]: expected an integer, got 'abc'``.

Secrets can stay out of the file: environment variables (``VIGIL_*``, see
:data:`ENV_OVERRIDES`) override it. Every secret is a pydantic ``SecretStr``
(the bot token, the database URL, each ccxt credential in
``exchanges.*.ccxt_config``): a ``repr``, a dump (``vigil config check``) or
a validation error shows ``***`` instead (the database URL keeps everything
but its password), and only the code that needs the value unwraps it with
``get_secret_value()``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from core.errors import ConfigError
from core.timeframes import timeframe_to_ms

__all__ = [
    "CCXT_CREDENTIAL_KEYS",
    "SECRET_MASK",
    "AlertsConfig",
    "AssetGroupConfig",
    "BacktestConfig",
    "Config",
    "DEFAULT_DETECTORS",
    "DatabaseConfig",
    "DetectorConfig",
    "ENV_OVERRIDES",
    "ExchangeConfig",
    "LoggingConfig",
    "OnchainSourceConfig",
    "PathsConfig",
    "SchedulerConfig",
    "SocialSourceConfig",
    "StreamsConfig",
    "TelegramConfig",
    "ThresholdConfig",
    "WatchEntry",
    "SecretUrl",
    "THRESHOLD_POLICY_KEYS",
    "default_config",
    "default_data_dir",
    "load_config",
    "mask_url_password",
    "validate_threshold",
]

DEFAULT_DATABASE_URL = "sqlite:///vigil.db"
PUBLIC_BOT_API = "https://api.telegram.org/bot"
PUBLIC_BOT_FILE_API = "https://api.telegram.org/file/bot"


def _check_timeframe(value: str) -> str:
    timeframe_to_ms(value)  # raises ValueError naming the value
    return value


Timeframe = Annotated[str, AfterValidator(_check_timeframe)]

SECRET_MASK = "***"
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^:/@\s'\"]*):([^@\s'\"/]+)@")
#: ccxt constructor keys that hold credentials (``Exchange.requiredCredentials``); their values become secrets.
CCXT_CREDENTIAL_KEYS = frozenset(
    {"apiKey", "secret", "password", "uid", "login", "twofa", "privateKey", "walletAddress", "token", "accountId"}
)


def mask_url_password(url: str) -> str:
    """``scheme://user:***@host/db``: the URL with its password (if any) hidden."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{SECRET_MASK}@", url)


class SecretUrl(SecretStr):
    """A URL that may hold a password: shown (``str``, ``repr``, dumps) with the password masked."""

    def _display(self) -> str:  # type: ignore[override]
        return mask_url_password(self.get_secret_value())


Secret = Annotated[SecretStr, PlainSerializer(lambda _v: SECRET_MASK, return_type=str, when_used="json")]
MaskedUrl = Annotated[SecretUrl, PlainSerializer(lambda v: str(v), return_type=str, when_used="json")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class DatabaseConfig(_Section):
    url: MaskedUrl = Field(
        default=SecretUrl(DEFAULT_DATABASE_URL),
        description="SQLAlchemy URL: sqlite:///path.db or postgresql+psycopg://user:pw@host/db (password masked)",
    )
    echo: bool = False

    @field_validator("url", mode="before")
    @classmethod
    def _url_is_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return SecretUrl(value)
        if not isinstance(value, SecretStr):
            raise ValueError(f"expected a URL string, got a {type(value).__name__}")
        return value


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"


class ExchangeConfig(_Section):
    ccxt_id: str | None = Field(
        default=None,
        min_length=1,
        description="the ccxt exchange class to use; default the table's name (two accounts or a mirror of one venue)",
    )
    ccxt_config: dict[str, Any] = Field(
        default_factory=dict,
        description="passed unchanged to the ccxt exchange constructor (urls, options, apiKey, ...)",
    )
    max_concurrency: int = Field(default=8, ge=1, le=256)
    max_retries: int = Field(default=5, ge=0, le=50)
    retry_base_delay: float = Field(default=1.0, ge=0, le=600, description="seconds before the first retry; doubles")
    retry_max_delay: float = Field(default=30.0, ge=0, le=3600, description="cap on one backoff wait, seconds")
    candles_per_request: int = Field(default=1000, ge=1, le=10_000)
    candles: Literal["rest", "websocket"] = Field(
        default="rest",
        description="how the main job gets new candles: one REST request per symbol, or the exchange's "
        "kline WebSocket streams (ccxt.pro) with REST filling whatever the stream missed",
    )

    @field_validator("ccxt_config", mode="after")
    @classmethod
    def _credentials_are_secret(cls, value: dict[str, Any]) -> dict[str, Any]:
        out = dict(value)
        for key in CCXT_CREDENTIAL_KEYS & set(out):
            raw = out[key]
            if isinstance(raw, SecretStr):
                continue
            if not isinstance(raw, str):
                raise ValueError(f"{key}: expected a string, got a {type(raw).__name__} (value not shown: a secret)")
            out[key] = SecretStr(raw)
        return out

    @field_serializer("ccxt_config", when_used="json")
    def _dump_ccxt_config(self, value: dict[str, Any]) -> dict[str, Any]:
        return {k: SECRET_MASK if isinstance(v, SecretStr) else v for k, v in value.items()}

    def client_config(self) -> dict[str, Any]:
        """``ccxt_config`` with the credentials unwrapped: what the ccxt constructor gets, and nothing else."""
        return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in self.ccxt_config.items()}


class WatchEntry(_Section):
    exchange: str = Field(min_length=1)
    symbol: str = Field(min_length=3)
    timeframe: Timeframe = "1h"
    stream: list[Literal["trades"]] = Field(
        default_factory=list,
        description='live streams for this market besides candles: ["trades"] scores pump chunks in seconds',
    )
    book_depth: int | None = Field(
        default=None,
        ge=5,
        le=1000,
        description="order-book levels per side to snapshot at every bar close (a depth the exchange accepts, "
        "Binance: 5, 10, 20, 50, 100, 500, 1000); unset: no snapshots",
    )
    group: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="asset group: entries of one group and timeframe are the same asset on several venues",
    )

    @field_validator("symbol")
    @classmethod
    def _symbol_has_quote(cls, value: str) -> str:
        base, sep, quote = value.partition("/")
        if not sep or not base or not quote:
            raise ValueError(f"expected BASE/QUOTE such as 'BTC/USDT', got {value!r}")
        return value.upper()


def _base_quote(value: str) -> str:
    base, sep, quote = value.partition("/")
    if not sep or not base or not quote:
        raise ValueError(f"expected BASE/QUOTE such as 'BTC/USDT', got {value!r}")
    return value.upper()


class AssetGroupConfig(_Section):
    """One asset on several exchanges (``[[groups]]``): expands into watchlist entries of one group.

    ``symbols`` maps an exchange to its own spelling where the quote differs
    (``{ kraken = "BTC/USD" }``); the others watch ``symbol``.
    """

    name: str | None = Field(default=None, min_length=1, max_length=64, description="default: the base asset")
    symbol: str = Field(min_length=3)
    exchanges: list[str] = Field(min_length=2, description="at least two venues; three or more name the odd one out")
    timeframe: Timeframe = "1h"
    symbols: dict[str, str] = Field(default_factory=dict)
    book_depth: int | None = Field(default=None, ge=5, le=1000)

    @field_validator("symbol")
    @classmethod
    def _symbol_has_quote(cls, value: str) -> str:
        return _base_quote(value)

    @model_validator(mode="after")
    def _consistent(self) -> AssetGroupConfig:
        dup = sorted({e for e in self.exchanges if self.exchanges.count(e) > 1})
        if dup:
            raise ValueError(f"exchanges: {', '.join(dup)} listed twice")
        stray = sorted(set(self.symbols) - set(self.exchanges))
        if stray:
            raise ValueError(f"symbols: {', '.join(stray)} not in this group's exchanges")
        for exchange, symbol in self.symbols.items():
            try:
                _base_quote(symbol)
            except ValueError as err:
                raise ValueError(f"symbols.{exchange}: {err}") from None
        return self

    @property
    def group_name(self) -> str:
        return self.name or self.symbol.partition("/")[0]

    def entries(self) -> list[dict[str, Any]]:
        """The watchlist entries (as config tables) this group stands for."""
        return [
            {
                "exchange": exchange,
                "symbol": self.symbols.get(exchange, self.symbol).upper(),
                "timeframe": self.timeframe,
                "group": self.group_name,
                **({"book_depth": self.book_depth} if self.book_depth else {}),
            }
            for exchange in self.exchanges
        ]


class SocialSourceConfig(_Section):
    name: str = Field(min_length=1)
    kind: Literal["csv", "parquet", "http_json", "santiment", "lunarcrush"]
    enabled: bool = True
    metric: str = "social_volume"
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="source-specific settings (path, url_template, api_key_env, ...)",
    )


class OnchainSourceConfig(_Section):
    """An on-chain metric source (``[[onchain]]``): one provider metric under one vigil name."""

    name: str = Field(min_length=1)
    kind: Literal["coinmetrics", "blockchair", "glassnode", "http_json", "csv"]
    enabled: bool = True
    metric: str = Field(
        min_length=1,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="vigil's name for the metric; frames get an 'onchain_<metric>' column",
    )
    period: Timeframe = Field(default="1d", description="what one value covers; known only once it has closed")
    delay_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60, description="publication delay after the period")
    options: dict[str, Any] = Field(default_factory=dict, description="provider settings (metric id, asset map, ...)")


# The keys each threshold policy reads, with their defaults (``value`` has none: static needs it).
# ``suppress`` applies to every policy. The windows differ by policy: 500 rows for a rolling
# quantile or telemanom's dynamic threshold, 2000 for the likelihood's fit of its short means.
THRESHOLD_POLICY_KEYS: dict[str, dict[str, Any]] = {
    "static": {"value": None},
    "k_sigma": {"k": 4.0},
    "rolling_quantile": {"quantile": 0.995, "window": 500},
    "dynamic": {"window": 500},
    "likelihood": {
        "short": 10,
        "window": 2000,
        "probability": 1e-4,
        "robust": False,
        "min_scale": 0.05,
        "min_history": 100,
        "record": 0,
    },
}
_POLICY_ONLY_KEYS = {key for keys in THRESHOLD_POLICY_KEYS.values() for key in keys}


class ThresholdConfig(_Section):
    """A detector's alarm policy (``detectors/thresholds.py``, ``detectors/likelihood.py``).

    Only the keys of the chosen policy may be set (``THRESHOLD_POLICY_KEYS``); the others are
    filled with that policy's defaults, so what is validated is what runs (``vigil config check``
    shows it).
    """

    policy: Literal["static", "k_sigma", "rolling_quantile", "dynamic", "likelihood"] = "k_sigma"
    value: float | None = Field(default=None, description="static: the threshold")
    k: float | None = Field(default=None, gt=0, le=1000, description="k_sigma: median + k * 1.4826 MAD")
    quantile: float | None = Field(default=None, gt=0, lt=1, description="rolling_quantile: the quantile")
    window: int | None = Field(
        default=None, ge=10, le=1_000_000, description="rows of past scores (500; likelihood: 2000)"
    )
    short: int | None = Field(default=None, ge=1, le=10_000, description="likelihood: rows of the compared mean")
    probability: float | None = Field(default=None, gt=0, lt=0.5, description="likelihood: tail probability")
    robust: bool | None = Field(default=None, description="likelihood: median and MAD instead of mean and std")
    min_scale: float | None = Field(default=None, ge=0, description="likelihood: floor of the spread")
    min_history: int | None = Field(default=None, ge=2, description="likelihood: rows before the first threshold")
    record: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="likelihood: rows whose highest short mean must be beaten (0: off)",
    )
    suppress: int = Field(
        default=0, ge=0, le=1_000_000, description="rows after an alarm's start in which a new alarm is dropped"
    )

    @model_validator(mode="before")
    @classmethod
    def _keys_of_the_policy(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        policy = data.get("policy", "k_sigma")
        keys = THRESHOLD_POLICY_KEYS.get(policy) if isinstance(policy, str) else None
        if keys is None:
            return data  # the Literal names the valid policies
        data = dict(data)
        if {"k", "quantile", "window"} <= data.keys():
            # Saved models of before carry the old model's dump, which filled k, quantile and
            # window for every policy: what the policy does not read is dropped (only in that shape).
            data = {key: value for key, value in data.items() if key not in _POLICY_ONLY_KEYS or key in keys}
        wrong = sorted(key for key in data if key in _POLICY_ONLY_KEYS and key not in keys)
        if wrong:
            raise ValueError(
                f"{', '.join(repr(k) for k in wrong)} not used by policy {policy!r} "
                f"(its keys: {', '.join(sorted(keys))}, suppress)"
            )
        for key, default in keys.items():
            if default is not None:
                data.setdefault(key, default)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> ThresholdConfig:
        if self.policy == "static" and self.value is None:
            raise ValueError("policy 'static' needs a 'value'")
        if self.policy == "likelihood":
            assert self.window is not None and self.short is not None and self.min_history is not None
            if self.short > self.window:
                raise ValueError(f"likelihood: short ({self.short}) must not exceed window ({self.window})")
            if self.min_history > self.window:
                raise ValueError(f"likelihood: min_history ({self.min_history}) must not exceed window ({self.window})")
        return self


def validate_threshold(data: Mapping[str, Any], source: str = "threshold") -> ThresholdConfig:
    """A ``ThresholdConfig`` from a plain dict (a ``-p threshold=...`` or a saved model's), errors as ConfigError."""
    try:
        return ThresholdConfig.model_validate(dict(data))
    except ValidationError as err:
        lines = _format_validation_error(err, source).splitlines()  # "source: key: msg" -> "source.key: msg"
        head = f"{source}: "
        message = "\n".join(
            line.replace(f"{head}(top level): ", head, 1)
            if "(top level)" in line
            else line.replace(head, f"{source}.", 1)
            for line in lines
        )
        raise ConfigError(message) from None


class DetectorConfig(_Section):
    enabled: bool = True
    threshold: ThresholdConfig = Field(default_factory=ThresholdConfig)
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="hyper-parameters handed to the detector's constructor",
    )
    scope: Literal["shared", "per_symbol"] = "shared"


class TelegramConfig(_Section):
    token: Secret | None = None
    base_url: str = PUBLIC_BOT_API
    base_file_url: str = PUBLIC_BOT_FILE_API
    allowed_chat_ids: list[int] = Field(default_factory=list)
    admin_user_ids: list[int] = Field(default_factory=list)
    alert_chat_ids: list[int] = Field(
        default_factory=list,
        description="chats that receive alerts; defaults to allowed_chat_ids",
    )
    mode: Literal["polling", "webhook"] = "polling"
    retry_max_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="longest wait between attempts to reach an unreachable Bot API"
    )
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)

    @model_validator(mode="after")
    def _webhook_needs_url(self) -> TelegramConfig:
        if self.mode == "webhook" and not self.webhook_url:
            raise ValueError("mode 'webhook' needs 'webhook_url'")
        return self

    @property
    def alert_chats(self) -> list[int]:
        return list(self.alert_chat_ids or self.allowed_chat_ids)


class AlertsConfig(_Section):
    cooldown_minutes: int = Field(default=60, ge=0)
    min_severity: Literal["low", "medium", "high"] = "low"
    chart_dir: str = "charts"
    chart_bars: int = Field(default=120, ge=20, le=2000)
    max_attempts: int = Field(default=8, ge=1, le=100)
    chart_workers: int | None = Field(
        default=None, ge=0, le=64, description="processes drawing alert charts; unset = one per core, 0 = in-process"
    )


class SchedulerConfig(_Section):
    close_delay_seconds: float = Field(default=5.0, ge=0)
    retrain_interval_hours: float = Field(default=24.0, gt=0)
    history_bars: int = Field(default=500, ge=50)
    book_retention_days: float = Field(
        default=30.0, gt=0, description="order-book features older than this are deleted"
    )
    misfire_grace_seconds: int = Field(default=300, ge=1)
    watchlist_poll_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="how soon `vigil run` sees a watchlist change made by another process"
    )


class BacktestConfig(_Section):
    strategy: str = "fixed_hold"
    hold_bars: int = Field(default=24, ge=1)
    fees: float = Field(default=0.001, ge=0, lt=0.1)
    slippage: float = Field(default=0.0005, ge=0, lt=0.1)
    init_cash: float = Field(default=10_000.0, gt=0)


class StreamsConfig(_Section):
    """``[streams]``: live trade streams and the pump scoring of their chunks (issue 18).

    Streamed symbols are the watchlist entries with ``stream = ["trades"]`` plus ``symbols``
    here, all on ``exchange``. Nothing streams unless one of them is set.
    """

    enabled: bool = True
    exchange: str = Field(default="binance", min_length=1, description="ccxt exchange with a ccxt.pro client")
    symbols: list[str] = Field(default_factory=list, description="symbols to stream besides flagged watchlist entries")
    chunk_seconds: int = Field(default=15, ge=5, le=60, description="chunk length; each close scores all symbols")
    settle_seconds: float = Field(default=0.2, ge=0, le=10, description="wait after a chunk end for in-flight trades")
    verify_after_seconds: float = Field(
        default=1.0, ge=0, le=30, description="a symbol silent this long after a chunk end is checked over REST"
    )
    alert_budget: float = Field(
        default=0.1, gt=0, le=100, description="alert episodes per symbol-week on pump-free data (sets the threshold)"
    )
    episode_gap_chunks: int = Field(default=8, ge=1, le=240, description="quiet chunks that end one pump's episode")
    keep_raw_minutes: int = Field(default=0, ge=0, le=1440, description="raw trades kept in the database (0: none)")
    keep_chunks_days: float = Field(default=7.0, gt=0, le=365)
    group_size: int = Field(default=100, ge=1, le=200, description="symbols per WebSocket")
    model_dir: str | None = Field(default=None, description="chunk model folder; default: the one shipped")

    @field_validator("symbols")
    @classmethod
    def _symbols_have_quote(cls, value: list[str]) -> list[str]:
        out = []
        for i, sym in enumerate(value):
            base, sep, quote = sym.partition("/")
            if not sep or not base or not quote:
                raise ValueError(f"symbols[{i}]: expected BASE/QUOTE such as 'BTC/USDT', got {sym!r}")
            out.append(sym.upper())
        return out


def default_data_dir() -> Path:
    """Where vigil keeps its files unless told otherwise: ``$XDG_DATA_HOME/vigil`` (``~/.local/share/vigil``)."""
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "vigil"


class PathsConfig(_Section):
    """Folders, always used as absolute paths: a relative one in the config file is relative to that file.

    Model files are stored in the database relative to ``models_dir``, so the same
    database and models work from any working directory (a systemd unit, a cron
    job) and move together when the folder moves.
    """

    data_dir: str | None = Field(default=None, description="default: $XDG_DATA_HOME/vigil (~/.local/share/vigil)")
    models_dir: str | None = Field(default=None, description="trained model files; default: <data_dir>/models")

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().absolute() if self.data_dir else default_data_dir().absolute()

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir).expanduser().absolute() if self.models_dir else self.data_path / "models"


class MetricsConfig(_Section):
    prometheus_port: int | None = Field(default=None, ge=1, le=65535)


# What runs when the config names no detectors: the cheap baseline, the two
# neural detectors of the seed design and the pump-and-dump classifier.
DEFAULT_DETECTORS: dict[str, dict[str, Any]] = {
    "zscore": {},
    "lstm_forecaster": {},
    "lstm_autoencoder": {},
    "pump_dump": {},
}


class Config(_Section):
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    exchanges: dict[str, ExchangeConfig] = Field(default_factory=dict)
    watchlist: list[WatchEntry] = Field(default_factory=list)
    groups: list[AssetGroupConfig] = Field(default_factory=list)
    social: list[SocialSourceConfig] = Field(default_factory=list)
    onchain: list[OnchainSourceConfig] = Field(default_factory=list)
    detectors: dict[str, DetectorConfig] = Field(default_factory=dict)
    telegram: TelegramConfig = Field(default_factory=TelegramConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    backtest: BacktestConfig = Field(default_factory=BacktestConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    paths: PathsConfig = Field(default_factory=PathsConfig)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)

    def detectors_in_use(self) -> dict[str, DetectorConfig]:
        """The ``[detectors.*]`` tables, or the default set when the config names none (enabled or not)."""
        if self.detectors:
            return dict(self.detectors)
        return {name: DetectorConfig(**kw) for name, kw in DEFAULT_DETECTORS.items()}

    @model_validator(mode="after")
    def _groups_join_the_watchlist(self) -> Config:
        """Every group member is a watchlist entry (tagged with its group), so every watchlist reader sees it."""
        if not self.groups:
            return self
        extra = [WatchEntry.model_validate(e) for g in self.groups for e in g.entries()]
        names = [(g.group_name, g.timeframe) for g in self.groups]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"groups: two groups named {name[0]!r} on {name[1]}; give one a name")
        object.__setattr__(self, "watchlist", [*self.watchlist, *extra])  # frozen model: set once, here
        return self

    @property
    def streamed_symbols(self) -> list[str]:
        """Symbols whose trades stream: ``[streams] symbols`` plus watchlist entries flagged ``stream = ["trades"]``."""
        if not self.streams.enabled:
            return []
        flagged = [e.symbol for e in self.watchlist if "trades" in e.stream and e.exchange == self.streams.exchange]
        return list(dict.fromkeys([*self.streams.symbols, *flagged]))

    @model_validator(mode="after")
    def _watchlist_exchanges_are_configured(self) -> Config:
        n_plain = len(self.watchlist) - sum(len(g.exchanges) for g in self.groups)

        def where(i: int, entry: WatchEntry) -> str:
            return f"watchlist[{i}]" if i < n_plain else f"groups ({entry.group!r}, {entry.exchange})"

        for i, entry in enumerate(self.watchlist):
            if self.exchanges and entry.exchange not in self.exchanges:
                known = ", ".join(sorted(self.exchanges))
                raise ValueError(
                    f"{where(i, entry)}.exchange: {entry.exchange!r} is not configured "
                    f"under [exchanges] (configured: {known})"
                )
        seen: set[tuple[str, str, str]] = set()
        for i, entry in enumerate(self.watchlist):
            key = (entry.exchange, entry.symbol, entry.timeframe)
            if key in seen:
                raise ValueError(f"{where(i, entry)}: duplicate entry {'/'.join(key)!r}")
            seen.add(key)
        for i, entry in enumerate(self.watchlist):
            if entry.stream and entry.exchange != self.streams.exchange:
                raise ValueError(
                    f"watchlist[{i}].stream: trades stream from streams.exchange {self.streams.exchange!r}, "
                    f"but this entry is on {entry.exchange!r}"
                )
        names = [s.name for s in self.social]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"social: duplicate source name {name!r}")
        chain_names = [s.name for s in self.onchain]
        for name in chain_names:
            if chain_names.count(name) > 1 or name in names:
                raise ValueError(f"onchain: duplicate source name {name!r} (names are shared with [[social]])")
        return self


# Environment variable -> dotted config key. Values are parsed as the key's type.
ENV_OVERRIDES: dict[str, str] = {
    "VIGIL_DATABASE_URL": "database.url",
    "VIGIL_TELEGRAM_TOKEN": "telegram.token",
    "VIGIL_TELEGRAM_BASE_URL": "telegram.base_url",
    "VIGIL_TELEGRAM_BASE_FILE_URL": "telegram.base_file_url",
    "VIGIL_TELEGRAM_ALLOWED_CHAT_IDS": "telegram.allowed_chat_ids",
    "VIGIL_TELEGRAM_ADMIN_USER_IDS": "telegram.admin_user_ids",
    "VIGIL_TELEGRAM_ALERT_CHAT_IDS": "telegram.alert_chat_ids",
    "VIGIL_LOG_LEVEL": "logging.level",
    "VIGIL_LOG_FORMAT": "logging.format",
    "VIGIL_DATA_DIR": "paths.data_dir",
    "VIGIL_MODELS_DIR": "paths.models_dir",
}
_PATH_KEYS = ("data_dir", "models_dir")
_LIST_OF_INT_KEYS = {
    "telegram.allowed_chat_ids",
    "telegram.admin_user_ids",
    "telegram.alert_chat_ids",
}


def _env_value(var: str, key: str, raw: str) -> Any:
    if key in _LIST_OF_INT_KEYS:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        try:
            return [int(item) for item in items]
        except ValueError:
            raise ConfigError(f"{var} ({key}): expected comma-separated integers, got {raw!r}") from None
    return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    for var, key in ENV_OVERRIDES.items():
        raw = environ.get(var)
        if raw is None or raw == "":
            continue
        section, _, field = key.partition(".")
        table = data.setdefault(section, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{section}: expected a table, got {table!r}")
        table[field] = _env_value(var, key, raw)
    # Exchange credentials: VIGIL_EXCHANGE_<NAME>_API_KEY / _SECRET / _PASSWORD
    for name, table in (data.get("exchanges") or {}).items():
        if not isinstance(table, dict):
            continue
        prefix = f"VIGIL_EXCHANGE_{name.upper()}_"
        for suffix, ccxt_key in (("API_KEY", "apiKey"), ("SECRET", "secret"), ("PASSWORD", "password")):
            raw = environ.get(prefix + suffix)
            if raw:
                table.setdefault("ccxt_config", {})[ccxt_key] = raw
    return data


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "list", "dict"}


def _is_type_tag(part: int | str) -> bool:
    """True for the type or validator names pydantic puts in union/constrained locations."""
    return isinstance(part, str) and (
        part in _TYPE_TAGS or part[:1].isupper() or "[" in part or part.startswith("function-")
    )


_SECRET_KEYS = CCXT_CREDENTIAL_KEYS | {"token", "url"}


def _is_secret_location(loc: tuple[int | str, ...]) -> bool:
    """A key whose value is a secret: its value never appears in an error message."""
    return any(isinstance(p, str) and p in _SECRET_KEYS for p in loc[-2:])


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = []
    for item in err.errors(include_url=False):
        # pydantic appends the validator or type name to the location of
        # constrained/union fields; drop the parts that are not config keys.
        loc = tuple(p for p in item["loc"] if not _is_type_tag(p))
        key = _format_loc(loc) or "(top level)"
        msg = str(item["msg"]).removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            lines.append(f"{source}: {key}: unknown key")
            continue
        if item["type"] == "missing":
            lines.append(f"{source}: {key}: required value is missing")
            continue
        value = item.get("input")
        shown = "" if isinstance(value, dict) else f", got {value!r}"
        if "got " in msg:
            shown = ""
        if _is_secret_location(loc) or isinstance(value, SecretStr):
            shown = " (value not shown: a secret)" if shown else ""
        lines.append(f"{source}: {key}: {msg}{shown}")
    return "\n".join(lines)


def _validate(data: dict[str, Any], source: str) -> Config:
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, source)) from None


def _config_text(p: Path, raw: bytes) -> str:
    """The file's text, or a one-line ConfigError for a binary or non-UTF-8 file (TOML is UTF-8 by definition)."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise ConfigError(f"{p}:{line}: binary data (a NUL byte), expected a UTF-8 TOML file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise ConfigError(
            f"{p}:{line}: not UTF-8 text (byte 0x{raw[err.start]:02x}; Latin-1 or cp1252?), save the file as UTF-8"
        ) from None


def _anchor_paths(data: dict[str, Any], base: Path) -> None:
    """Make relative ``[paths]`` folders absolute against ``base`` (the config file's folder, or the cwd)."""
    table = data.get("paths")
    if not isinstance(table, dict):
        return
    for key in _PATH_KEYS:
        value = table.get(key)
        if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
            table[key] = str((base / Path(value).expanduser()).absolute())


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate a config file.

    ``path=None`` gives the embedded defaults (SQLite, no Telegram), still
    subject to the environment, which is how ``vigil demo`` runs with no file.
    """
    env = os.environ if environ is None else environ
    source = "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        source = str(p)
        try:
            raw = p.read_bytes()
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except IsADirectoryError:
            raise ConfigError(f"config file {p} is a directory") from None
        except OSError as err:
            raise ConfigError(f"cannot read config file {p}: {err.strerror}") from None
        text = _config_text(p, raw)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{p}: invalid TOML: {err}") from None
        _anchor_paths(data, p.parent)
    data = _apply_env(data, env)
    _anchor_paths(data, Path.cwd())  # what the environment gave, relative to where we run
    return _validate(data, source)


def default_config(**sections: Any) -> Config:
    """The embedded defaults, optionally with some sections replaced (tests, demo)."""
    return _validate(dict(sections), "defaults")
