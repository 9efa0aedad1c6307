"""Hook calls counted per issuer and content version too, so that the report's fire rates divide
each EHR's cards, under each version of the content, by that EHR's calls under that version.

The counts kept so far move over with an empty issuer and content version: they were not recorded.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hook_calls_by_issuer",
        sa.Column("service", sa.String(100), nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("issuer", sa.Text, nullable=False, server_default=""),
        sa.Column("content_version", sa.String(100), nullable=False, server_default=""),
        sa.Column("calls", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("service", "day", "issuer", "content_version", name="pk_hook_calls_by_issuer"),
    )
    op.execute(
        "INSERT INTO hook_calls_by_issuer (service, day, issuer, content_version, calls) "
        "SELECT service, day, '', '', calls FROM hook_calls"
    )
    op.drop_table("hook_calls")
    op.rename_table("hook_calls_by_issuer", "hook_calls")


def downgrade() -> None:
    op.create_table(
        "hook_calls_by_day",
        sa.Column("service", sa.String(100), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("calls", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO hook_calls_by_day (service, day, calls) SELECT service, day, SUM(calls) FROM hook_calls "
        "GROUP BY service, day"
    )
    op.drop_table("hook_calls")
    op.rename_table("hook_calls_by_day", "hook_calls")
