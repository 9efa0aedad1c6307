"""The schema comes from Alembic migrations: empty to head and back, on both databases, and the
tables the code uses match what the migrations build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cds_service.store.database import downgrade, migrate, open_database
from cds_service.store.schema import metadata

pytestmark = pytest.mark.anyio


async def test_upgrade_to_head_and_down_again(database_url: str) -> None:
    engine = open_database(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            diff = await conn.run_sync(lambda sync: compare_metadata(MigrationContext.configure(sync), metadata))
        assert {"issued_cards", "feedback", "alembic_version"} <= tables
        assert diff == [], f"schema.py and the migrations disagree: {diff}"
        await migrate(engine)  # at head already: nothing to do
        await downgrade(engine, "base")
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
        assert tables <= {"alembic_version"}
    finally:
        await engine.dispose()
