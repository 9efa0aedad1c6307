"""Issued cards and feedback.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issued_cards",
        sa.Column("card_uuid", sa.String(36), primary_key=True),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(100), nullable=False),
        sa.Column("indicator", sa.String(20), nullable=False),
        sa.Column("suggestions", sa.JSON, nullable=False),
        sa.Column("content_version", sa.String(100), nullable=False),
        sa.Column("profile", sa.String(100), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_issued_cards_kind", "issued_cards", ["kind"])
    op.create_index("ix_issued_cards_issued_at", "issued_cards", ["issued_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("card_uuid", sa.String(36), nullable=False),
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("accepted_suggestions", sa.JSON, nullable=False),
        sa.Column("override_code", sa.String(200)),
        sa.Column("override_system", sa.String(500)),
        sa.Column("override_display", sa.String(500)),
        sa.Column("user_comment", sa.Text),
        sa.Column("outcome_timestamp", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("known_card", sa.Boolean, nullable=False),
        sa.UniqueConstraint("card_uuid", "outcome", "outcome_timestamp", name="uq_feedback_entry"),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_index("ix_feedback_card_uuid", "feedback")
    op.drop_table("feedback")
    op.drop_index("ix_issued_cards_issued_at", "issued_cards")
    op.drop_index("ix_issued_cards_kind", "issued_cards")
    op.drop_table("issued_cards")
