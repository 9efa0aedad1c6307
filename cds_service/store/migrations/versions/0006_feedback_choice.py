"""Feedback kept once per card, outcome, instant and choice: two overrides of one card at one
instant for two reasons are two answers, not one sent twice.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from cds_service.store.schema import choice_digest

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_rows = sa.table(
    "feedback",
    sa.column("id", sa.Integer),
    sa.column("card_uuid", sa.String),
    sa.column("outcome", sa.String),
    sa.column("outcome_timestamp", sa.DateTime),
    sa.column("accepted_suggestions", sa.JSON),
    sa.column("override_system", sa.String),
    sa.column("override_code", sa.String),
    sa.column("choice", sa.String),
)


def upgrade() -> None:
    op.add_column("feedback", sa.Column("choice", sa.String(64), nullable=False, server_default=""))
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(_rows.c.id, _rows.c.accepted_suggestions, _rows.c.override_system, _rows.c.override_code)
    ).all()
    if rows:
        bind.execute(
            _rows.update().where(_rows.c.id == sa.bindparam("row_id")).values(choice=sa.bindparam("digest")),
            [
                {"row_id": r.id, "digest": choice_digest(r.accepted_suggestions, r.override_system, r.override_code)}
                for r in rows
            ],
        )
    with op.batch_alter_table("feedback") as batch:  # SQLite: the table is copied with the new constraint
        batch.drop_constraint("uq_feedback_entry", type_="unique")
        batch.create_unique_constraint("uq_feedback_entry", ["card_uuid", "outcome", "outcome_timestamp", "choice"])


def downgrade() -> None:
    """Back to one entry per card, outcome and instant: of entries that differ only in their
    choice, the first stored is kept."""
    kept = _rows.alias("kept")
    first = sa.select(sa.func.min(kept.c.id)).group_by(kept.c.card_uuid, kept.c.outcome, kept.c.outcome_timestamp)
    op.execute(_rows.delete().where(_rows.c.id.not_in(first)))
    with op.batch_alter_table("feedback") as batch:
        batch.drop_constraint("uq_feedback_entry", type_="unique")
        batch.create_unique_constraint("uq_feedback_entry", ["card_uuid", "outcome", "outcome_timestamp"])
        batch.drop_column("choice")
