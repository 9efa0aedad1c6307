"""Who may see the governance page: the admin token, as a bearer token or through the login form's
session, and a limit on wrong tries so that a weak token cannot be guessed at speed.

A session is a random cookie whose SHA-256 the database keeps until it expires or its holder
signs out: every worker and replica sees the same sessions, and signing out ends one everywhere
(the cookie alone, copied, opens nothing afterwards)."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from collections import deque
from datetime import datetime, timedelta
from enum import Enum

from fastapi import Request
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.schema import admin_sessions, db_time

COOKIE = "cds_admin"
SESSION = timedelta(hours=8)  # a signed-in page stays open a working day at most
# Wrong tokens allowed in any minute, in one process; past that, every try waits for the window.
TRIES = 10
WINDOW_S = 60.0
_COOKIE_MAX = 64  # characters of a session cookie (43 are made); a longer one is no session


class Verdict(Enum):
    NONE = "no credential"
    GOOD = "the admin token"
    WRONG = "a wrong credential"


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode()).hexdigest()


class Gate:
    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._wrong: deque[float] = deque()

    async def check(self, request: Request, now: datetime) -> Verdict:
        """The bearer token (compared in constant time), else a session the database holds."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return self.token(given)
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return Verdict.NONE
        if len(cookie) > _COOKIE_MAX:
            return self._counted(False)
        engine: AsyncEngine = request.app.state.engine
        query = select(admin_sessions.c.id).where(
            admin_sessions.c.id == _digest(cookie), admin_sessions.c.expires_at > db_time(now)
        )
        async with engine.connect() as conn:
            found = (await conn.execute(query)).first() is not None
        return self._counted(found)

    def token(self, given: str) -> Verdict:
        return self._counted(hmac.compare_digest(given.encode(), self._token))

    async def open_session(self, engine: AsyncEngine, now: datetime) -> str:
        """A new session's cookie; sessions past their time are cleared on the way."""
        cookie = secrets.token_urlsafe(32)
        async with engine.begin() as conn:
            await conn.execute(delete(admin_sessions).where(admin_sessions.c.expires_at <= db_time(now)))
            await conn.execute(admin_sessions.insert().values(id=_digest(cookie), expires_at=db_time(now + SESSION)))
        return cookie

    async def close_session(self, engine: AsyncEngine, cookie: str | None) -> None:
        if cookie and len(cookie) <= _COOKIE_MAX:
            async with engine.begin() as conn:
                await conn.execute(delete(admin_sessions).where(admin_sessions.c.id == _digest(cookie)))

    def wait_s(self) -> int | None:
        """Seconds until a try is heard again, when the wrong ones have used up the window."""
        now = time.monotonic()
        while self._wrong and self._wrong[0] <= now - WINDOW_S:
            self._wrong.popleft()
        if len(self._wrong) < TRIES:
            return None
        return max(1, math.ceil(self._wrong[0] + WINDOW_S - now))

    def _counted(self, good: bool) -> Verdict:
        if good:
            return Verdict.GOOD
        self._wrong.append(time.monotonic())
        return Verdict.WRONG
