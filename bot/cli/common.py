"""Plumbing shared by every ``vigil`` subcommand.

Each package that adds commands (feeds, detectors, backtest, bot) imports
these rather than re-implementing option parsing, so ``--config`` and
``--db`` mean the same everywhere and every user error ends the same way:
one line on stderr and exit code 1, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from core.config import Config, load_config
from core.errors import BotError

__all__ = [
    "ConfigOption",
    "DbOption",
    "GuardedGroup",
    "console",
    "err_console",
    "fail",
    "load_cli_config",
    "open_cli_database",
]

console = Console()
err_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Config TOML (default: $VIGIL_CONFIG, else ./config.toml if present, else built-in defaults).",
        dir_okay=False,
    ),
]
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Database URL; overrides the config and $VIGIL_DATABASE_URL."),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    print_error(message)
    return typer.Exit(code)


def load_cli_config(path: Path | None, db: str | None = None) -> Config:
    """The config a command runs with: explicit file, $VIGIL_CONFIG, ./config.toml, or defaults."""
    if path is None and os.environ.get("VIGIL_CONFIG"):
        path = Path(os.environ["VIGIL_CONFIG"])
    if path is None and Path("config.toml").is_file():
        path = Path("config.toml")
    cfg = load_config(path)
    if db:
        cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": db})})
    return cfg


def open_cli_database(cfg: Config) -> Any:
    """Session factory for the configured database, migrated to head."""
    from storage.db import open_database

    _engine, factory = open_database(cfg.database.url, echo=cfg.database.echo)
    return factory


class GuardedGroup(TyperGroup):
    """A command group that turns BotError into a one-line message and exit 1."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BotError as err:
            print_error(str(err))
            raise typer.Exit(1) from None


def print_error(message: str) -> None:
    for i, line in enumerate(message.splitlines() or [message]):
        prefix = "[bold red]error:[/] " if i == 0 else "       "
        err_console.print(prefix + escape(line), highlight=False, soft_wrap=True)
