"""The issuer whose call received each card, so that another EHR's feedback does not act on it.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("issued_cards", sa.Column("issuer", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("issued_cards") as batch:  # SQLite: the table is copied without the column
        batch.drop_column("issuer")
