"""Silent cards and hook calls per service and day.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issued_cards", sa.Column("silent", sa.Boolean, nullable=False, server_default=sa.false()))
    op.create_table(
        "hook_calls",
        sa.Column("service", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("hook_calls")
    with op.batch_alter_table("issued_cards") as batch:  # SQLite: the table is copied without the column
        batch.drop_column("silent")
