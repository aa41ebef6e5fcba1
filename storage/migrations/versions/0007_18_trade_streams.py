"""trade_chunks and stream_trades: what the live trade streams keep (issue 18)

Revision ID: 0007_18
Revises: 0006_19
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_18"
down_revision: str | None = "0006_19"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "trade_chunks",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("chunk_s", sa.Integer(), nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("rush", sa.Float(), nullable=False),
        sa.Column("trades", sa.Float(), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("price_max", sa.Float(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("exchange", "symbol", "chunk_s", "ts"),
    )
    op.create_table(
        "stream_trades",
        sa.Column("exchange", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("trade_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("ts", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("is_buy", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("exchange", "symbol", "trade_id"),
    )
    op.create_index("ix_stream_trades_ts", "stream_trades", ["ts"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_stream_trades_ts", table_name="stream_trades")
    op.drop_table("stream_trades")
    op.drop_table("trade_chunks")
