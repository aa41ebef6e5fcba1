"""The floor every package stands on: config, the error tree, timeframes.

Imports nothing else of vigil's. The public face::

    from core import Config, load_config, BotError, ConfigError, timeframe_to_ms
"""

from __future__ import annotations

from core.config import Config, default_config, load_config
from core.errors import (
    BacktestError,
    BadSymbolError,
    BotError,
    ConfigError,
    DataSourceError,
    DetectorError,
    InputError,
    StorageError,
)
from core.timeframes import timeframe_to_ms

__all__ = [
    "BacktestError",
    "BadSymbolError",
    "BotError",
    "Config",
    "ConfigError",
    "DataSourceError",
    "DetectorError",
    "InputError",
    "StorageError",
    "default_config",
    "load_config",
    "timeframe_to_ms",
]
