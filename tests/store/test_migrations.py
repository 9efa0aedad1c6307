"""The schema comes from Alembic migrations: empty to head and back, on both databases, and the
tables the code uses match what the migrations build."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from cds_service.store.database import downgrade, migrate, open_database
from cds_service.store.schema import hook_calls, metadata

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


async def test_the_hook_calls_counted_before_0007_are_kept(database_url: str) -> None:
    """0007 counts hook calls per issuer and content version: the counts of a store at 0005 move
    over, under an empty issuer and version (they were not recorded), and back on a downgrade."""
    engine = open_database(database_url)
    try:
        await migrate(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO hook_calls (service, day, calls) VALUES ('vitamin-d-cramps', '2026-11-24', 7)")
            )
        await migrate(engine)
        async with engine.connect() as conn:
            columns = (hook_calls.c.issuer, hook_calls.c.content_version, hook_calls.c.calls)
            kept = (await conn.execute(select(*columns))).all()
        assert [tuple(row) for row in kept] == [("", "", 7)]
        await downgrade(engine, "0005")
        async with engine.connect() as conn:
            back = (await conn.execute(text("SELECT service, calls FROM hook_calls"))).all()
        assert [tuple(row) for row in back] == [("vitamin-d-cramps", 7)]
    finally:
        await engine.dispose()
