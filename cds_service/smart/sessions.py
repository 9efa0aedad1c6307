"""The SMART app's server-side state: a launch waiting for its code (by `state`) and a session (by
the cookie's random id) holding the access token, which never reaches the browser. Kept in process,
or in Redis when CDS_REDIS_URL is set, so that any worker can serve the callback and the page."""

from __future__ import annotations

import time
from typing import Any

from ..shared import SharedState

_KEPT = 10_000  # entries kept in process, of each kind apart; the oldest go first


class SessionStore:
    """Each kind is kept apart, so that launches, which anyone may start, never push out a
    session, which only an EHR's token makes (from an attack run). With Redis away, each call
    raises SharedStateUnavailable."""

    def __init__(self, shared: SharedState | None) -> None:
        self._shared = shared
        self._entries: dict[str, dict[str, tuple[float, dict[str, Any]]]] = {}

    async def put(self, kind: str, key: str, value: dict[str, Any], ttl_s: int) -> None:
        if self._shared is not None:
            await self._shared.put_entry(kind, key, value, ttl_s)
            return
        now = time.monotonic()
        entries = self._entries.setdefault(kind, {})
        if len(entries) >= _KEPT:
            entries = self._entries[kind] = {k: v for k, v in entries.items() if v[0] > now}
            while len(entries) >= _KEPT:
                del entries[next(iter(entries))]
        entries[key] = (now + ttl_s, value)

    async def get(self, kind: str, key: str, *, take: bool = False) -> dict[str, Any] | None:
        """The entry if it has not expired; `take` removes it, so that it serves once."""
        if self._shared is not None:
            return await self._shared.entry(kind, key, take=take)
        entries = self._entries.get(kind, {})
        held = entries.pop(key, None) if take else entries.get(key)
        if held is None or held[0] <= time.monotonic():
            return None
        return held[1]
