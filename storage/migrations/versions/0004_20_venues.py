"""book_features (order-book numbers per market and bar); watchlist group_name and book_depth (issue 20)

Revision ID: 0004_20
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_20"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "book_features",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("spread_bps", sa.Float(), nullable=True),
        sa.Column("imbalance_1pct", sa.Float(), nullable=True),
        sa.Column("imbalance_5pct", sa.Float(), nullable=True),
        sa.Column("depth_1pct", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "symbol", "ts"),
    )
    with op.batch_alter_table("watchlist") as batch_op:
        batch_op.add_column(sa.Column("group_name", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("book_depth", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watchlist") as batch_op:
        batch_op.drop_column("book_depth")
        batch_op.drop_column("group_name")
    op.drop_table("book_features")
