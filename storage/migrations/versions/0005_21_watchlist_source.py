"""watchlist.source: where each watched market came from (config, chat, cli)

The database is the one source of truth for what is watched: the config's
``[[watchlist]]`` only seeds it. ``source`` says who added a row, so ``/list``
can tell. Rows from before this revision get ``chat`` when a user id was
recorded (only chat records one) and stay NULL ("not recorded") otherwise.

Revision ID: 0005_21
Revises: 0004_20
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_21"
down_revision: str | None = "0004_20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("watchlist") as batch_op:
        batch_op.add_column(sa.Column("source", sa.String(length=16), nullable=True))
    op.execute("UPDATE watchlist SET source = 'chat' WHERE added_by IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("watchlist") as batch_op:
        batch_op.drop_column("source")
