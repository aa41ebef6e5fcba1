"""Errors vigil raises on purpose.

Every error a user can cause (bad config, bad file, unknown symbol, bad chat
argument) is one of these, so the CLI and the bot can print a one-line reason
instead of a traceback. Callers catch the bases::

    BotError
     +-- ConfigError          a config key or value is wrong (names key and value)
     +-- InputError           a file or argument given by the user is malformed
     +-- DataSourceError      an exchange or social source failed
     |    +-- BadSymbolError  the exchange does not list the symbol (permanent)
     +-- DetectorError        a detector failed to fit, load or score
     +-- StorageError         the database refused an operation
     +-- BacktestError        a backtest could not run on the given input
"""

from __future__ import annotations

__all__ = [
    "BacktestError",
    "BadSymbolError",
    "BotError",
    "ConfigError",
    "DataSourceError",
    "DetectorError",
    "InputError",
    "StorageError",
]


class BotError(Exception):
    """Root of every error vigil raises on purpose."""


class ConfigError(BotError):
    """A configuration key or value is invalid."""


class InputError(BotError):
    """A user-supplied file or argument is malformed."""


class DataSourceError(BotError):
    """An exchange or social data source failed."""


class BadSymbolError(DataSourceError):
    """The exchange does not list this symbol; retrying will not help."""


class DetectorError(BotError):
    """A detector failed to fit, load or score."""


class StorageError(BotError):
    """The database refused an operation."""


class BacktestError(BotError):
    """A backtest could not run on the given input."""
