"""Reading what the store wrote, straight from its database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from cds_service.store.database import open_database


async def rows(url: str, *columns: Any) -> list[tuple[Any, ...]]:
    engine = open_database(url)
    try:
        async with engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(select(*columns))]
    finally:
        await engine.dispose()
