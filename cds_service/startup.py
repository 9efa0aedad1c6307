"""What a server process checks and says as it starts: the database reached (one clear line when it
cannot be, naming CDS_DATABASE_URL by its host and never its password, not a driver's traceback)."""

from __future__ import annotations

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine

from .store.database import migrate, open_database

_PROBLEM_MAX = 300  # characters of a driver's message: enough for "Connect call failed ('10.0.0.5', 5432)"


class DatabaseUnreachable(Exception):
    """The database could not be opened or migrated; the message says where and why, never a password."""


def where(url: str) -> str:
    """The database as a message may name it: driver, host, port and database (a SQLite file's
    path); no user name, password or query (which may hold either)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return "a URL that does not parse"
    shown = URL.create(parsed.drivername, host=parsed.host, port=parsed.port, database=parsed.database)
    return shown.render_as_string()


def _cause(exc: BaseException) -> BaseException:
    """The driver's own error under SQLAlchemy's wrapping, which adds the statement and a link."""
    while (inner := getattr(exc, "orig", None) or exc.__cause__) is not None and inner is not exc:
        exc = inner
    return exc


def problem(url: str, exc: BaseException) -> str:
    cause = _cause(exc)
    said = " ".join(str(cause).split())
    password = _password(url)
    if password:
        said = said.replace(password, "***")
    if len(said) > _PROBLEM_MAX:
        said = f"{said[:_PROBLEM_MAX]}…"
    because = f"{type(cause).__name__}: {said}" if said else type(cause).__name__
    return f"the database at CDS_DATABASE_URL ({where(url)}) cannot be used: {because}"


def _password(url: str) -> str | None:
    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        found = re.search(r"://[^:/@]*:([^@/]+)@", url)  # what a URL that does not parse holds as one
        return found[1] if found else None


async def open_migrated(url: str) -> AsyncEngine:
    """The database opened and at the latest migration: the proof that it answers, before a
    server says it is ready. DatabaseUnreachable when it does not."""
    try:
        engine = open_database(url)
    except Exception as exc:  # a URL SQLAlchemy refuses, a SQLite folder that cannot be made
        raise DatabaseUnreachable(problem(url, exc)) from None
    try:
        await migrate(engine)
    except Exception as exc:  # any driver's error: refused, unknown host, bad password, read-only file
        await engine.dispose()
        raise DatabaseUnreachable(problem(url, exc)) from None
    return engine
