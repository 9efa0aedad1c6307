"""The schema comes from Alembic migrations: empty to head and back, on both databases, and the
tables the code uses match what the migrations build."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import JSON, Boolean, DateTime, Integer, String, column, inspect, select, table, text

from cds_service.store.database import downgrade, migrate, open_database
from cds_service.store.schema import choice_digest, feedback, hook_calls, metadata

pytestmark = pytest.mark.anyio

# The feedback table as 0005 left it (schema.feedback is the latest).
feedback_0005 = table(
    "feedback",
    column("id", Integer),
    column("card_uuid", String),
    column("service", String),
    column("outcome", String),
    column("accepted_suggestions", JSON),
    column("override_code", String),
    column("outcome_timestamp", DateTime),
    column("received_at", DateTime),
    column("known_card", Boolean),
)


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


async def test_0006_keys_stored_feedback_by_its_choice_and_back(database_url: str) -> None:
    """Feedback stored before 0006 gets the choice its entries made (so that one sent again after
    the upgrade is still kept once); a downgrade keeps the first of entries that differ only in
    their choice, since 0005's uniqueness cannot hold both."""
    engine = open_database(database_url)
    card, at = "0b1e4d2e-0000-4000-8000-000000000001", datetime(2026, 11, 25, 10)
    row = {"card_uuid": card, "service": "s", "outcome_timestamp": at, "received_at": at, "known_card": True}
    try:
        await migrate(engine, "0005")
        async with engine.begin() as conn:
            await conn.execute(
                feedback_0005.insert(),
                [
                    row | {"outcome": "accepted", "accepted_suggestions": ["b", "a"], "override_code": None},
                    row | {"outcome": "overridden", "accepted_suggestions": [], "override_code": "x"},
                ],
            )
        await migrate(engine)
        async with engine.begin() as conn:
            stored = {r.outcome: r.choice for r in await conn.execute(select(feedback.c.outcome, feedback.c.choice))}
            assert stored == {
                "accepted": choice_digest(["a", "b"], None, None),
                "overridden": choice_digest([], None, "x"),
            }
            other_reason = row | {"outcome": "overridden", "accepted_suggestions": [], "override_code": "y"}
            await conn.execute(feedback.insert(), [other_reason | {"choice": choice_digest([], None, "y")}])
        await downgrade(engine, "0005")
        async with engine.connect() as conn:
            left = [r.override_code for r in await conn.execute(select(feedback_0005.c.override_code))]
        assert sorted(left, key=str) == sorted([None, "x"], key=str)
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
