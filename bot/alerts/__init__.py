"""Alerts as the user sees them: message text and buttons (``text``), charts, and the outbox dispatcher."""

from __future__ import annotations

__all__: list[str] = []
