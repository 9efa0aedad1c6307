"""Issued cards are written behind the hook call: queued, flushed in one transaction, kept when
the database is away, and flushed before feedback so that it finds its card."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cds_service.protocol import Card, Coding, FeedbackEntry, Source
from cds_service.store.database import migrate, open_database
from cds_service.store.feedback import FeedbackStore
from cds_service.store.schema import feedback, hook_calls, issued_cards

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def card() -> Card:
    return Card(
        uuid=uuid.uuid4(), summary="s", indicator="info", source=Source(label="l", topic=Coding(code="vitd-deficient"))
    )


async def rows(store_url: str, table: object) -> int:
    engine = open_database(store_url)
    async with engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()  # type: ignore[arg-type]
    await engine.dispose()
    return int(count)


async def test_queued_then_flushed(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'r.sqlite'}"
    engine = open_database(url)
    await migrate(engine)
    store = FeedbackStore(engine, "v", "endocrine-2011")
    store.record_cards("svc", [card(), card()], NOW)
    assert await rows(url, issued_cards) == 0  # the hook call did not wait for the database
    await store.flush()
    assert await rows(url, issued_cards) == 2
    await engine.dispose()


async def test_kept_while_the_database_is_away_and_written_once_it_is_back(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'away.sqlite'}"
    engine = open_database(url)  # no tables yet: every write fails, as when the database is away
    store = FeedbackStore(engine, "v", "endocrine-2011")
    store.record_cards("svc", [card(), card()], NOW)
    store.count_call("svc", NOW)
    await store.flush()  # fails, logs, keeps what it could not write
    await migrate(engine)  # the database is back
    await store.flush()
    assert await rows(url, issued_cards) == 2
    async with engine.connect() as conn:
        assert (await conn.execute(select(hook_calls.c.calls))).scalar_one() == 1
    await engine.dispose()


async def test_feedback_finds_a_card_issued_a_moment_ago(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'f.sqlite'}"
    engine = open_database(url)
    await migrate(engine)
    store = FeedbackStore(engine, "v", "endocrine-2011")
    issued = card()
    store.record_cards("svc", [issued], NOW)
    entry = FeedbackEntry.model_validate(
        {"card": str(issued.uuid), "outcome": "overridden", "outcomeTimestamp": "2026-11-25T10:00:00Z"}
    )
    assert (await store.store("svc", [entry], NOW)).new == 1
    async with engine.connect() as conn:
        known = (await conn.execute(select(feedback.c.known_card))).scalar_one()
    assert known is True
    await engine.dispose()


async def test_a_write_under_way_is_finished_when_its_caller_is_stopped(database_url: str) -> None:
    """The recorder stopped at shutdown, or a feedback request cancelled, in the middle of a flush:
    the rows it had taken from the queue are still written, once, and the calls counted once."""
    engine = open_database(database_url)
    await migrate(engine)
    store = FeedbackStore(engine, "v", "endocrine-2011")
    store.record_cards("svc", [card(), card()], NOW)
    store.count_call("svc", NOW)
    writing = asyncio.create_task(store.flush())
    await asyncio.sleep(0)  # it has taken the queue and is waiting on the database
    assert not writing.done()
    writing.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await writing
    await store.flush()  # waits for the write under way; nothing is left to write
    assert await rows(database_url, issued_cards) == 2
    async with engine.connect() as conn:
        assert (await conn.execute(select(hook_calls.c.calls))).scalar_one() == 1
    await engine.dispose()
