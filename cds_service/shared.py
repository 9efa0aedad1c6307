"""What the JWT checks remember, shared by every worker and replica through Redis (CDS_REDIS_URL):
the jti values already used, so a token replayed to another worker is refused, and the EHRs' key
sets, so that they are fetched once for all.

Without Redis each process keeps its own (trust.replay.ReplayCache, trust.keys.KeyStore's dictionary). With Redis,
the checks fail closed: when Redis cannot be reached, a call is refused (401, logged) rather than
let a replayed token through, and /readyz says the service is not ready.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import redis.asyncio as redis
from redis.exceptions import RedisError

logger = logging.getLogger("cds_service")

_PREFIX = "cds-service:"
_JWKS_TTL_S = 24 * 3600  # a key set unused for a day is fetched again
_LOCK_TTL_S = 5.0
_LOCK_WAIT_S = 3.0


class SharedStateUnavailable(Exception):
    """Redis could not be reached; the reason is safe to log."""


def _key(kind: str, *parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()  # bounded keys, no token text
    return f"{_PREFIX}{kind}:{digest}"


class SharedState:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    @classmethod
    def connect(cls, url: str) -> SharedState:
        return cls(redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0))

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        """True the first time (iss, jti) is seen, in any worker, until the token expires (Redis
        forgets it then; `now` is for trust.replay.ReplayCache's sake)."""
        try:
            created = await self._redis.set(_key("jti", iss, jti), b"1", nx=True, exat=int(exp) + 1)
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}") from None
        return bool(created)

    async def key_set(self, url: str) -> tuple[dict[str, Any], float] | None:
        """The key set document last fetched from `url` by any worker, and when (epoch seconds)."""
        try:
            raw = await self._redis.get(_key("jwks", url))
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}") from None
        if raw is None:
            return None
        entry = orjson.loads(raw)
        return entry["document"], float(entry["fetched_at"])

    async def put_key_set(self, url: str, document: dict[str, Any], fetched_at: float) -> None:
        entry = orjson.dumps({"document": document, "fetched_at": fetched_at})
        try:
            await self._redis.set(_key("jwks", url), entry, ex=_JWKS_TTL_S)
        except (RedisError, OSError):
            logger.warning("the key set could not be shared through Redis")  # this worker keeps it

    @asynccontextmanager
    async def one_fetch(self, url: str) -> AsyncIterator[None]:
        """Held by one worker at a time while it fetches `url` (redis-py's Lock), so that the others,
        waiting their turn, find its document instead of fetching again. A worker that waits in vain
        (a holder slower than a few seconds) goes on without the lock."""
        lock = self._redis.lock(_key("jwks-lock", url), timeout=_LOCK_TTL_S, blocking_timeout=_LOCK_WAIT_S)
        try:
            held = await lock.acquire()
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}") from None
        try:
            yield
        finally:
            if held:
                with contextlib.suppress(RedisError, OSError):  # expired meanwhile: nothing to release
                    await lock.release()

    async def put_entry(self, kind: str, key: str, value: dict[str, Any], ttl_s: int) -> None:
        """A short-lived entry any worker can read (a SMART app's session or pending launch)."""
        try:
            await self._redis.set(_key(kind, key), orjson.dumps(value), ex=ttl_s)
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}") from None

    async def entry(self, kind: str, key: str, *, take: bool = False) -> dict[str, Any] | None:
        """The entry, if it has not expired; `take` deletes it as it is read, so it serves once."""
        try:
            raw = await (self._redis.getdel if take else self._redis.get)(_key(kind, key))
        except (RedisError, OSError) as exc:
            raise SharedStateUnavailable(f"Redis: {type(exc).__name__}") from None
        return orjson.loads(raw) if raw is not None else None
