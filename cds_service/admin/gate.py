"""Who may see the governance page: the admin token, as a bearer token or through the login form's
session cookie, and a limit on wrong tries so that a weak token cannot be guessed at speed."""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import deque
from enum import Enum

from fastapi import Request

COOKIE = "cds_admin"
# Wrong tokens allowed in any minute, in one process; past that, every try waits for the window.
TRIES = 10
WINDOW_S = 60.0


class Verdict(Enum):
    NONE = "no credential"
    GOOD = "the admin token"
    WRONG = "a wrong credential"


class Gate:
    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self.session = hmac.new(self._token, b"cds-admin-session", hashlib.sha256).hexdigest()
        self._wrong: deque[float] = deque()

    def check(self, request: Request) -> Verdict:
        """The bearer token, else the session cookie; compared in constant time."""
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given:
            return self.token(given)
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return Verdict.NONE
        return self._counted(hmac.compare_digest(cookie.encode(), self.session.encode()))

    def token(self, given: str) -> Verdict:
        return self._counted(hmac.compare_digest(given.encode(), self._token))

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
