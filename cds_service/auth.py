"""Verifying the calling EHR's JWT (CDS Hooks "Trusting CDS Clients"), strictly.

Every CDS endpoint, discovery included, needs `Authorization: Bearer <JWT>` signed with an
asymmetric key of an issuer listed in CDS_TRUSTED_ISSUERS_FILE, for the exact URL called, fresh,
and never seen before. Keys come only from the issuer's configured key set (inline, `jwks_url`, or
a `jku` the configuration allowlists); never from a URL only the token names. Every failure is a
401 that says only "unauthorized"; the reason is logged, the token never.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from .fhir.client import FhirClient, FhirUnavailable
from .json_bodies import OrjsonResponse
from .metrics import JWT_REJECTIONS, reason_label
from .protocol import operation_outcome
from .settings import Settings
from .shared import SharedState, SharedStateUnavailable
from .validation import problems

logger = logging.getLogger("cds_service")

_REFRESH_INTERVAL_S = 60.0
_KEY_TYPES = {"ES": ECKey, "RS": RSAKey, "PS": RSAKey}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


class Unauthorized(Exception):
    """The caller is not trusted. `reason` is for the log only: never the token, never to the caller."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IssuerConfigError(Exception):
    """The trusted issuers file is missing or wrong; the message names the file."""


# --- the trusted issuers file -------------------------------------------------------------------


class IssuerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku: list[str] = []
    tenant: str | None = None

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSpec:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give either jwks_url or jwks")
        if self.jwks is not None:
            try:
                KeySet.import_key_set(self.jwks)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"jwks is not a usable key set: {exc}") from None
        return self


class IssuersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuers: list[IssuerSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> IssuersFile:
        names = [i.iss for i in self.issuers]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"issuer listed twice: {', '.join(duplicates)}")
        return self


def load_issuers(path: Path) -> dict[str, IssuerSpec]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except FileNotFoundError:
        raise IssuerConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise IssuerConfigError(f"{path}: cannot be read: {exc}") from None
    try:
        parsed = IssuersFile.model_validate(data)
    except ValidationError as exc:
        raise IssuerConfigError(f"{path}: {problems(exc)}") from None
    return {i.iss: i for i in parsed.issuers}


# --- keys -----------------------------------------------------------------------------------------


@dataclass
class _CachedKeys:
    keys: KeySet
    fetched_at: float


class KeyStore:
    """Key sets by URL, fetched on first use and again when a token names an unknown `kid`, at most
    once a minute per URL (so unknown kids cannot make the service hammer an EHR). With shared
    state (Redis) the minute and the fetched document are shared by every worker and replica."""

    def __init__(
        self, fhir: FhirClient, clock: Callable[[], float] = time.time, shared: SharedState | None = None
    ) -> None:
        self._fhir = fhir
        self._clock = clock
        self._shared = shared
        self._cache: dict[str, _CachedKeys] = {}

    async def key(self, url: str, kid: str) -> Any:
        cached = self._cache.get(url)
        if cached is None or (_lacks(cached.keys, kid) and self._clock() - cached.fetched_at >= _REFRESH_INTERVAL_S):
            try:
                cached = await (self._refresh_shared(url, kid, cached) if self._shared else self._fetch(url, cached))
            except SharedStateUnavailable as exc:
                raise Unauthorized(f"key set unavailable: {exc}") from None
        if _lacks(cached.keys, kid):
            raise Unauthorized("unknown kid")
        return cached.keys.get_by_kid(kid)

    async def _refresh_shared(self, url: str, kid: str, previous: _CachedKeys | None) -> _CachedKeys:
        """The shared document when it is newer than ours and either names `kid` or is less than
        the interval old; otherwise one worker fetches for all while the others wait for it."""
        assert self._shared is not None
        shared = await self._shared.key_set(url)
        if shared is not None:
            adopted = self._adopt(url, shared, previous)
            if not _lacks(adopted.keys, kid) or self._clock() - adopted.fetched_at < _REFRESH_INTERVAL_S:
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


def _lacks(keys: KeySet, kid: str) -> bool:
    return all(k.kid != kid for k in keys.keys)


# --- replayed tokens ------------------------------------------------------------------------------


@dataclass
class ReplayCache:
    """jti values seen, kept until their token expires. Bounded: when full, the entries closest to
    expiry go first."""

    size: int
    _seen: dict[tuple[str, str], float] = field(default_factory=dict)
    _expiries: list[tuple[float, tuple[str, str]]] = field(default_factory=list)

    async def first_use(self, iss: str, jti: str, exp: float, now: float) -> bool:
        while self._expiries and (self._expiries[0][0] < now or len(self._seen) >= self.size):
            expiry, key = heapq.heappop(self._expiries)
            if self._seen.get(key) == expiry:
                del self._seen[key]
        key = (iss, jti)
        if key in self._seen:
            return False
        self._seen[key] = exp
        heapq.heappush(self._expiries, (exp, key))
        return True


# --- verification ---------------------------------------------------------------------------------


def _b64json(segment: str, what: str) -> dict[str, Any]:
    """orjson, not the standard library: it refuses NaN, infinities and nesting past 1,024 levels,
    where json.loads would accept the first two and raise RecursionError on the third."""
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = orjson.loads(raw)
    except (binascii.Error, ValueError):
        raise Unauthorized(f"{what} is not base64url JSON") from None
    if not isinstance(value, dict):
        raise Unauthorized(f"{what} is not a JSON object")
    return value


def _number(claims: dict[str, Any], name: str, required: bool) -> float | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise Unauthorized(f"no {name}")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Unauthorized(f"{name} is not a finite number")
    return float(value)


class Verifier:
    def __init__(
        self,
        settings: Settings,
        issuers: dict[str, IssuerSpec],
        keys: KeyStore,
        clock: Callable[[], float] = time.time,
        shared: SharedState | None = None,
    ) -> None:
        self._algorithms = frozenset(settings.jwt_algorithms)
        self._leeway = settings.jwt_leeway_s
        self._max_lifetime = settings.jwt_max_lifetime_s
        self._issuers = issuers
        self._keys = keys
        self._inline = {i.iss: KeySet.import_key_set(i.jwks) for i in issuers.values() if i.jwks is not None}  # type: ignore[arg-type]
        self._replays = shared or ReplayCache(settings.jwt_replay_cache_size)
        self._clock = clock

    async def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims, if the caller is trusted for `audience`; Unauthorized otherwise."""
        if not authorization:
            raise Unauthorized("no Authorization header")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("not a Bearer token")
        token = token.strip()
        segments = token.split(".")
        if len(segments) != 3 or not all(segments):
            raise Unauthorized("not a compact JWS")
        header = _b64json(segments[0], "header")
        claims = _b64json(segments[1], "payload")

        if header.get("typ") not in (None, "JWT"):
            raise Unauthorized("typ is not JWT")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise Unauthorized("alg not allowed")
        if "crit" in header:
            raise Unauthorized("crit header not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no kid")

        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized("issuer not trusted")
        key = await self._key(issuer, header.get("jku"), kid)
        expected_type = _KEY_TYPES.get(alg[:2])
        if expected_type is None or not isinstance(key, expected_type):
            raise Unauthorized("key type does not match alg")
        if alg in _CURVES and key.curve_name != _CURVES[alg]:
            raise Unauthorized("key curve does not match alg")
        try:
            jws.deserialize_compact(token, key, algorithms=[alg])
        except JoseError:
            raise Unauthorized("bad signature") from None

        await self._check_claims(claims, issuer, audience)
        return claims

    async def _key(self, issuer: IssuerSpec, jku: Any, kid: str) -> Any:
        """The key that must have signed the token. An issuer whose keys are pinned inline is
        verified against them only, never by a fetch: a `jku` it lists must be among them, and with
        none listed a `jku` is ignored (the CDS Hooks Sandbox names one on every token). An issuer
        with `jwks_url` takes a `jku` only from its list, and fetches it."""
        if jku is not None and not isinstance(jku, str):
            raise Unauthorized("jku not on the issuer's list")
        listed = jku is not None and jku in issuer.jku
        if issuer.jwks_url is not None:
            if jku is not None and not listed:
                raise Unauthorized("jku not on the issuer's list")
            return await self._keys.key(jku if isinstance(jku, str) and listed else issuer.jwks_url, kid)
        if jku is not None and issuer.jku and not listed:
            raise Unauthorized("jku not on the issuer's list")
        keys = self._inline[issuer.iss]
        if _lacks(keys, kid):
            raise Unauthorized("unknown kid")
        return keys.get_by_kid(kid)

    async def _check_claims(self, claims: dict[str, Any], issuer: IssuerSpec, audience: str) -> None:
        now = self._clock()
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audience not in audiences:
            raise Unauthorized("aud is not the URL called")
        exp = _number(claims, "exp", required=True)
        iat = _number(claims, "iat", required=True)
        nbf = _number(claims, "nbf", required=False)
        assert exp is not None and iat is not None
        if exp <= now - self._leeway:
            raise Unauthorized("expired")
        if iat > now + self._leeway:
            raise Unauthorized("iat in the future")
        if nbf is not None and nbf > now + self._leeway:
            raise Unauthorized("not yet valid (nbf)")
        if exp - iat > self._max_lifetime:
            raise Unauthorized("lifetime too long")
        if issuer.tenant is not None and claims.get("tenant") != issuer.tenant:
            raise Unauthorized("tenant does not match")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise Unauthorized("no jti")
        try:
            first = await self._replays.first_use(issuer.iss, jti, exp + self._leeway, now)
        except SharedStateUnavailable as exc:
            raise Unauthorized(f"replay check unavailable: {exc}") from None
        if not first:
            raise Unauthorized("jti replayed")


# --- the ASGI edge --------------------------------------------------------------------------------


class RequireJwt:
    """Every CDS endpoint (discovery, services, feedback) needs a trusted JWT, checked before the
    body is read. CORS preflights pass: they carry no credentials by design."""

    def __init__(self, app: ASGIApp, public_base_url: str | None) -> None:
        self.app = app
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_cds_path(scope["path"]) or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        audience = (
            f"{self.public_base_url}{request.url.path}"
            if self.public_base_url
            else f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
        )
        verifier: Verifier = request.app.state.verifier
        try:
            claims = await verifier.verify(request.headers.get("authorization"), audience)
        except Unauthorized as exc:
            JWT_REJECTIONS.labels(reason_label(exc.reason)).inc()
            logger.warning("unauthorized", extra={"path": request.url.path, "reason": exc.reason, "status": 401})
            body = operation_outcome("login", "unauthorized")
            await OrjsonResponse(body, 401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
            return
        scope.setdefault("state", {})["issuer"] = claims["iss"]  # the EHR: it names its patients
        await self.app(scope, receive, send)


def _is_cds_path(path: str) -> bool:
    return path == "/cds-services" or path.startswith("/cds-services/")
