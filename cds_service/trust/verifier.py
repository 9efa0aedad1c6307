"""The checks of one token: its form, its issuer and key, its signature, its claims, its jti."""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable
from typing import Any

import orjson
from joserfc import jws
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import ECKey, KeySet, RSAKey
from joserfc.jwt import JWTClaimsRegistry

from ..settings import Settings
from ..shared import SharedState, SharedStateUnavailable
from . import Unauthorized, at
from .issuers import IssuerSpec
from .keys import KeyStore, lacks
from .replay import ReplayCache

# The longest Authorization header read, checked before anything of it is decoded: a CDS Hooks JWT
# is well under 2 KB (an RS384 one with jku and kid about 1 KB), and base64 and JSON decoding cost
# many times a token's size (an unsigned 8 MB token once cost 212 MB before its 401). It bounds the
# header and payload too: together at most 12 KB of JSON once base64 is undone.
MAX_AUTHORIZATION_BYTES = 16 * 1024

_KEY_TYPES = {"ES": ECKey, "RS": RSAKey, "PS": RSAKey}
_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


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


# Why joserfc refused a present claim, when the reason is not that it is not a number.
_CLAIM_REASONS = {
    "aud": "aud is not the URL called",
    "exp": "expired",
    "iat": "iat in the future",
    "nbf": "not yet valid (nbf)",
    "jti": "no jti",
}
_TIMES = ("exp", "iat", "nbf")
_JTI_MAX = 256  # characters of a jti (a UUID is 36): the replay cache holds 100,000 of them


def _invalid(claims: dict[str, Any], claim: str, audience: str, now: int, leeway: int) -> Unauthorized:
    """The refusal of a present claim joserfc found invalid, with what was expected and what came:
    a time with the server's clock and the bound it broke (the leeway counted in)."""
    value = claims.get(claim)
    if claim in _TIMES and (isinstance(value, bool) or not isinstance(value, int | float)):
        return Unauthorized(f"{claim} is not a finite number", claim=claim, received=value)
    expected: object = {
        "aud": audience,
        "exp": f"after {at(now - leeway)}",
        "iat": f"before {at(now + leeway)}",
        "nbf": f"before {at(now + leeway)}",
    }.get(claim)
    reason = _CLAIM_REASONS.get(claim, f"{claim} is not valid")
    times = {"received": at(value), "server_time": at(now)} if claim in _TIMES else {"received": value}
    return Unauthorized(reason, claim=claim, expected=expected, **times)


def _unlisted(issuer: IssuerSpec, jku: object) -> Unauthorized:
    return Unauthorized("jku not on the issuer's list", claim="jku", expected=issuer.jku, received=jku)


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
        if len(authorization) > MAX_AUTHORIZATION_BYTES:  # the middleware checked the bytes; this, any caller
            raise Unauthorized("Authorization header too long")
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
            raise Unauthorized("typ is not JWT", claim="typ", expected="JWT", received=header.get("typ"))
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise Unauthorized("alg not allowed", claim="alg", expected=sorted(self._algorithms), received=alg)
        if "crit" in header:
            raise Unauthorized("crit header not supported")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no kid")

        iss = claims.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) else None
        if issuer is None:
            raise Unauthorized("issuer not trusted", claim="iss", received=iss)
        key = await self._key(issuer, header.get("jku"), kid)
        expected_type = _KEY_TYPES.get(alg[:2])
        if expected_type is None or not isinstance(key, expected_type):
            expected = f"an alg for the {key.key_type} key {kid}"
            raise Unauthorized("key type does not match alg", claim="alg", expected=expected, received=alg)
        if alg in _CURVES and key.curve_name != _CURVES[alg]:
            expected = f"an alg for the {key.curve_name} key {kid}"
            raise Unauthorized("key curve does not match alg", claim="alg", expected=expected, received=alg)
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
            raise _unlisted(issuer, jku)
        listed = jku is not None and jku in issuer.jku
        if issuer.jwks_url is not None:
            if jku is not None and not listed:
                raise _unlisted(issuer, jku)
            return await self._keys.key(jku if isinstance(jku, str) and listed else issuer.jwks_url, kid)
        if jku is not None and issuer.jku and not listed:
            raise _unlisted(issuer, jku)
        keys = self._inline[issuer.iss]
        if lacks(keys, kid):
            raise Unauthorized("unknown kid", claim="kid", expected=[k.kid for k in keys.keys], received=kid)
        return keys.get_by_kid(kid)

    async def _check_claims(self, claims: dict[str, Any], issuer: IssuerSpec, audience: str) -> None:
        """joserfc checks the registered claims; by hand only what it cannot: the lifetime cap, the
        tenant and the replay of a jti."""
        now = int(self._clock())
        registry = JWTClaimsRegistry(
            now=now,
            leeway=self._leeway,
            aud={"essential": True, "value": audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise _invalid(claims, "exp", audience, now, self._leeway) from None
        except MissingClaimError as exc:
            if "aud" in exc.claim:
                raise Unauthorized(_CLAIM_REASONS["aud"], claim="aud", expected=audience, received="(none)") from None
            missing = f"no {exc.claim}"  # one of metrics.JWT_REASONS: the claims joserfc requires
            raise Unauthorized(missing, claim=exc.claim) from None
        except InvalidClaimError as exc:
            raise _invalid(claims, exc.claim, audience, now, self._leeway) from None
        exp, iat = claims["exp"], claims["iat"]
        if exp - iat > self._max_lifetime:
            expected = f"exp - iat at most {self._max_lifetime} s"
            raise Unauthorized("lifetime too long", claim="exp", expected=expected, received=f"{exp - iat} s")
        if issuer.tenant is not None and claims.get("tenant") != issuer.tenant:
            received = claims.get("tenant", "(none)")
            raise Unauthorized("tenant does not match", claim="tenant", expected=issuer.tenant, received=received)
        if not isinstance(claims["jti"], str) or len(claims["jti"]) > _JTI_MAX:
            # the replay cache keeps each jti: bounded in size
            expected = f"a string of at most {_JTI_MAX} characters"
            raise Unauthorized("jti is not valid", claim="jti", expected=expected, received=claims["jti"])
        try:
            first = await self._replays.first_use(issuer.iss, claims["jti"], exp + self._leeway, now)
        except SharedStateUnavailable as exc:
            raise Unauthorized(f"replay check unavailable: {exc}") from None
        if not first:
            raise Unauthorized("jti replayed", claim="jti", received=claims["jti"])
