"""The issuers' key sets: fetched on first use and again for an unknown `kid`, at most once a
minute per URL and one fetch at a time, shared by every worker and replica through Redis when it
is configured."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..fhir.client import FhirClient, FhirUnavailable
from ..shared import SharedState, SharedStateUnavailable
from . import Unauthorized

_REFRESH_INTERVAL_S = 60.0


@dataclass
class _CachedKeys:
    keys: KeySet
    fetched_at: float


class KeyStore:
    """Key sets by URL, fetched on first use and again when a token names an unknown `kid`, at most
    once a minute per URL (so unknown kids cannot make the service hammer an EHR). One fetch at a
    time per URL in a process: calls that need a fetch already under way wait for it and use what it
    brought (a lock per URL, and the need looked at again once it is held), so fifty tokens arriving
    together make one fetch, not fifty. With shared state (Redis) the minute and the fetched
    document are shared by every worker and replica, and one worker fetches for all."""

    def __init__(
        self, fhir: FhirClient, clock: Callable[[], float] = time.time, shared: SharedState | None = None
    ) -> None:
        self._fhir = fhir
        self._clock = clock
        self._shared = shared
        self._cache: dict[str, _CachedKeys] = {}
        # One per URL, and URLs come only from the issuers file (jwks_url, or a jku it lists).
        self._fetching: dict[str, asyncio.Lock] = {}

    async def key(self, url: str, kid: str) -> Any:
        cached = self._cache.get(url)
        if self._due(cached, kid):
            async with self._fetching.setdefault(url, asyncio.Lock()):
                cached = self._cache.get(url)  # what a fetch this call waited for brought, if one did
                if self._due(cached, kid):
                    try:
                        cached = await (
                            self._refresh_shared(url, kid, cached) if self._shared else self._fetch(url, cached)
                        )
                    except SharedStateUnavailable as exc:
                        raise Unauthorized(f"key set unavailable: {exc}") from None
        assert cached is not None  # fetched, or a failure recorded, under the lock
        if lacks(cached.keys, kid):
            raise Unauthorized("unknown kid", claim="kid", expected=[k.kid for k in cached.keys.keys], received=kid)
        return cached.keys.get_by_kid(kid)

    def _due(self, cached: _CachedKeys | None, kid: str) -> bool:
        """Whether a call for `kid` must fetch: nothing yet, or `kid` unknown and the last fetch (or
        failed fetch) a minute old."""
        return cached is None or (lacks(cached.keys, kid) and self._clock() - cached.fetched_at >= _REFRESH_INTERVAL_S)

    async def _refresh_shared(self, url: str, kid: str, previous: _CachedKeys | None) -> _CachedKeys:
        """The shared document when it is newer than ours and either names `kid` or is less than
        the interval old; otherwise one worker fetches for all while the others wait for it."""
        assert self._shared is not None
        shared = await self._shared.key_set(url)
        if shared is not None:
            adopted = self._adopt(url, shared, previous)
            if not lacks(adopted.keys, kid) or self._clock() - adopted.fetched_at < _REFRESH_INTERVAL_S:
                return adopted
            previous = adopted
        seen = shared[1] if shared is not None else 0.0
        async with self._shared.one_fetch(url):
            latest = await self._shared.key_set(url)
            if latest is not None and latest[1] > seen:  # another worker fetched while this one waited
                return self._adopt(url, latest, previous)
            return await self._fetch(url, previous)

    def _adopt(self, url: str, shared: tuple[dict[str, Any], float], previous: _CachedKeys | None) -> _CachedKeys:
        document, fetched_at = shared
        if previous is not None and previous.fetched_at >= fetched_at:
            return previous
        try:
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except (JoseError, ValueError, KeyError, TypeError):  # none yet: a failed fetch, dated
            keys = previous.keys if previous else KeySet([])
        cached = self._cache[url] = _CachedKeys(keys, fetched_at)
        return cached

    async def _fetch(self, url: str, previous: _CachedKeys | None) -> _CachedKeys:
        fetched_at = self._clock()
        try:
            document = await self._fhir.get_document(url)
            keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
        except FhirUnavailable as exc:
            await self._failed(url, previous, fetched_at)
            raise Unauthorized(f"key set unavailable: {exc.reason}") from None
        except (JoseError, ValueError, KeyError, TypeError):
            await self._failed(url, previous, fetched_at)
            raise Unauthorized("key set is not a JWKS") from None
        else:
            if self._shared is not None:
                await self._shared.put_key_set(url, document, fetched_at)
        cached = _CachedKeys(keys, fetched_at)
        self._cache[url] = cached
        return cached

    async def _failed(self, url: str, previous: _CachedKeys | None, at: float) -> None:
        """A failed fetch counts as one: the keys we had (or none) until the interval has passed,
        so tokens naming unknown kids never make the service fetch more than once a minute; with
        shared state, for every worker (they adopt the keys we had, dated now)."""
        keys = previous.keys if previous else KeySet([])
        self._cache[url] = _CachedKeys(keys, at)
        if self._shared is not None:
            await self._shared.put_key_set(url, dict(keys.as_dict(private=False)), at)


def lacks(keys: KeySet, kid: str) -> bool:
    return all(k.kid != kid for k in keys.keys)
