"""Plumbing shared by every ``vigil`` subcommand.

Each package that adds commands (feeds, detectors, backtest, bot) imports
these rather than re-implementing option parsing, so ``--config`` and
``--db`` mean the same everywhere and every error ends the same way: one line
on stderr, secrets masked, and exit code 1 (130 when interrupted), never a
traceback (:mod:`bot.toplevel` decides what the line says).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from bot.masking import config_secrets, mask, register_secrets
from core.config import Config, SecretUrl, load_config

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
    register_secrets(config_secrets(cfg))
    if db:
        cfg = cfg.model_copy(update={"database": cfg.database.model_copy(update={"url": SecretUrl(db)})})
    return cfg


def open_cli_database(cfg: Config) -> Any:
    """Session factory for the configured database, migrated to head."""
    from storage.db import open_database

    _engine, factory = open_database(cfg.database.url, echo=cfg.database.echo)
    return factory


class GuardedGroup(TyperGroup):
    """A command group that turns any exception into one masked line on stderr and exit 1 (130 on Ctrl-C)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (Exception, KeyboardInterrupt) as err:  # noqa: BLE001 - the top: nothing may escape as a traceback
            if type(err).__module__.partition(".")[0] in {"typer", "click"}:
                raise  # typer's own exits and usage errors (typer vendors click) print themselves
            from bot.toplevel import exit_code, report

            report(err, printer=print_error)
            raise typer.Exit(exit_code(err)) from None


def print_error(message: str) -> None:
    """``error: <message>`` on stderr, on one line, secrets masked."""
    line = " ".join(mask(message).split())
    err_console.print("[bold red]error:[/] " + escape(line), highlight=False, soft_wrap=True)
