"""Alembic runs inside the service (database.migrate) on the connection it is given."""

from __future__ import annotations

from alembic import context

from cds_service.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through cds_service.store.database.migrate")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
