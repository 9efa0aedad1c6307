"""Snoozes after an override, under keyed pseudonyms.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issued_cards", sa.Column("snoozed", sa.Boolean, nullable=False, server_default=sa.false()))
    op.add_column("issued_cards", sa.Column("subject", sa.String(64)))
    op.add_column("issued_cards", sa.Column("evidence", sa.String(64)))
    op.create_table(
        "snoozes",
        sa.Column("subject", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(100), primary_key=True),
        sa.Column("evidence", sa.String(64), primary_key=True),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("snoozes")
    with op.batch_alter_table("issued_cards") as batch:  # SQLite: the table is copied without the columns
        batch.drop_column("evidence")
        batch.drop_column("subject")
        batch.drop_column("snoozed")
