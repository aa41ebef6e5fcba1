"""deliveries: the chart as its own step after the alert text (issue 19)

An alert's text goes out at once and its chart follows as a reply. The chart has
its own status, attempts, lease and message id, so each part is sent once, also
across a restart.

Revision ID: 0006_19
Revises: 0005_21
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_19"
down_revision: str | None = "0005_21"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.add_column(sa.Column("chart_status", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("chart_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("chart_next_attempt_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("chart_message_id", sa.BigInteger(), nullable=True))
        batch_op.create_index("ix_deliveries_chart_status_next", ["chart_status", "chart_next_attempt_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch_op:
        batch_op.drop_index("ix_deliveries_chart_status_next")
        batch_op.drop_column("chart_message_id")
        batch_op.drop_column("chart_next_attempt_at")
        batch_op.drop_column("chart_attempts")
        batch_op.drop_column("chart_status")
