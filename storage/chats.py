"""Chats the bot talks to: whole-chat mutes, per-symbol mutes, inactive chats.

A chat that blocked or kicked the bot (HTTP 403) is marked inactive so the
outbox stops queueing for it; writing to it again (any command) revives it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import Chat, SymbolMute

__all__ = [
    "chat_mutes",
    "chats_not_receiving",
    "ensure_chat",
    "mark_chat_inactive",
    "mute_symbol",
    "set_chat_muted",
    "unmute_symbol",
]


def ensure_chat(session: Session, chat_id: int, *, title: str | None = None, revive: bool = False) -> Chat:
    """The chat row, created on first sight."""
    chat = session.get(Chat, chat_id)
    if chat is None:
        chat = Chat(id=chat_id, title=(title or None) and title[:256], active=True)
        session.add(chat)
        session.flush()
    elif revive and not chat.active:
        chat.active = True
    return chat


def set_chat_muted(session: Session, chat_id: int, until: datetime | None) -> Chat:
    """Mute the whole chat until ``until`` (None unmutes, and clears its symbol mutes)."""
    chat = ensure_chat(session, chat_id)
    chat.muted_until = until
    if until is None:
        session.execute(delete(SymbolMute).where(SymbolMute.chat_id == chat_id))
    return chat


def mute_symbol(session: Session, chat_id: int, symbol: str, until: datetime) -> None:
    """Mute one symbol in one chat until ``until`` (extends, never shortens, an existing mute)."""
    ensure_chat(session, chat_id)
    row = session.get(SymbolMute, (chat_id, symbol))
    if row is None:
        session.add(SymbolMute(chat_id=chat_id, symbol=symbol, until=until))
    elif row.until < until:
        row.until = until
    session.flush()


def unmute_symbol(session: Session, chat_id: int, symbol: str) -> bool:
    """Lift one symbol's mute in one chat; returns whether there was one."""
    result: Any = session.execute(delete(SymbolMute).where(SymbolMute.chat_id == chat_id, SymbolMute.symbol == symbol))
    return bool(result.rowcount)


def chat_mutes(session: Session, chat_id: int, now: datetime) -> tuple[datetime | None, dict[str, datetime]]:
    """(whole chat muted until, {symbol: muted until}) for the mutes of ``chat_id`` still running at ``now``."""
    chat = session.get(Chat, chat_id)
    muted = chat.muted_until if chat is not None and chat.muted_until and chat.muted_until > now else None
    rows = session.scalars(select(SymbolMute).where(SymbolMute.chat_id == chat_id, SymbolMute.until > now))
    return muted, {m.symbol: m.until for m in rows}


def mark_chat_inactive(session: Session, chat_id: int) -> None:
    ensure_chat(session, chat_id).active = False


def chats_not_receiving(session: Session, chat_ids: Iterable[int], symbol: str, now: datetime) -> set[int]:
    """The chats among ``chat_ids`` that must not get an alert on ``symbol`` now.

    Inactive chats, chats muted as a whole, and chats that muted this symbol.
    """
    ids = list(chat_ids)
    if not ids:
        return set()
    out: set[int] = set()
    for chat in session.scalars(select(Chat).where(Chat.id.in_(ids))):
        if not chat.active or (chat.muted_until is not None and chat.muted_until > now):
            out.add(chat.id)
    mutes = select(SymbolMute.chat_id).where(
        SymbolMute.chat_id.in_(ids), SymbolMute.symbol == symbol, SymbolMute.until > now
    )
    out.update(session.scalars(mutes))
    return out
