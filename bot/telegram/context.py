"""What handlers can reach: a typed ``CustomContext`` over ``bot_data``.

``post_init`` puts a :class:`BotServices` into ``bot_data``; handlers read it
through properties, so they never import the database, ccxt or the
backtester, and tests can hand in a service wired to fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from telegram.ext import CallbackContext, ExtBot

from bot.telegram.limits import ChatGates
from core.errors import BotError

if TYPE_CHECKING:
    from bot.alerts.dispatcher import Dispatcher
    from bot.service import BotService

__all__ = ["AccessPolicy", "BotServices", "CustomContext", "NotAdmin"]


class NotAdmin(BotError):
    """A non-admin tried to change something."""


@dataclass(frozen=True)
class AccessPolicy:
    """Who may talk to the bot (allowed chats) and who may change things (admins).

    An admin's private chat is always allowed; everything else must be listed.
    An empty allowlist therefore means "admins in private only", never "everyone".
    """

    allowed_chat_ids: frozenset[int] = frozenset()
    admin_user_ids: frozenset[int] = frozenset()

    @classmethod
    def from_config(cls, telegram: Any) -> AccessPolicy:
        return cls(frozenset(telegram.allowed_chat_ids), frozenset(telegram.admin_user_ids))

    def chat_allowed(self, chat_id: int, chat_type: str, user_id: int | None) -> bool:
        if chat_id in self.allowed_chat_ids:
            return True
        return chat_type == "private" and user_id is not None and user_id in self.admin_user_ids

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self.admin_user_ids

    def require_admin(self, user_id: int | None, action: str = "do that") -> None:
        """The one admin check of commands and buttons: ``NotAdmin("Only an admin can <action>.")`` otherwise."""
        if not self.is_admin(user_id):
            raise NotAdmin(f"Only an admin can {action}.")


@dataclass
class BotServices:
    """Everything the handlers use; built by the caller (CLI, runtime, tests)."""

    service: BotService
    access: AccessPolicy
    dispatcher: Dispatcher | None = None
    background: set[Any] = field(default_factory=set)
    gates: ChatGates = field(default_factory=ChatGates)  # how many backtests/charts run at once, for all chats


class CustomContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    """Handler context with typed access to the services."""

    @property
    def services(self) -> BotServices:
        return self.bot_data["services"]

    @property
    def service(self) -> BotService:
        return self.services.service

    @property
    def access(self) -> AccessPolicy:
        return self.services.access
