"""SMART App Launch 2.0, EHR launch, as the client: `iss` and `launch` in, the server's
`.well-known/smart-configuration`, authorize with `state` and PKCE S256, the code for a token, the
patient from the token response. The protocol's messages are Authlib's; every request goes through
the service's FHIR client, so that `iss` and the endpoints it names meet the same allowlist and
address guard as a hook's `fhirServer`."""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authlib.oauth2.rfc6749.parameters import (  # type: ignore[import-untyped]
    prepare_grant_uri,
    prepare_token_request,
)
from authlib.oauth2.rfc7523 import private_key_jwt_sign  # type: ignore[import-untyped]
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # type: ignore[import-untyped]
from joserfc.jwk import ECKey, KeySet, RSAKey

from ..fhir.client import FhirClient, FhirUnavailable
from ..protocol import is_fhir_id
from ..settings import Settings
from ..shared import SharedStateUnavailable
from .sessions import SessionStore

LAUNCH_TTL_S = 600  # from the redirect to authorize until the code comes back
_TOKEN_ANSWER_BYTES = 64 * 1024  # a token answer is a few KB; a larger one is no EHR's
# RFC 6750's b64token, of a length EHRs' tokens have (a few KB): kept in a session and sent as a
# header, so neither of any size nor with a character a header cannot hold (from an attack run).
_ACCESS_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]{1,16384}=*", re.ASCII)
_SCOPES = {
    "v1": "launch openid fhirUser patient/Patient.read patient/Observation.read patient/MedicationRequest.read "
    "patient/Medication.read",
    "v2": "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/MedicationRequest.rs "
    "patient/Medication.rs",
}


_ERROR_CODE = re.compile(r"[a-z_]{1,64}", re.ASCII)


def error_code(error: object) -> str | None:
    """An OAuth error code (`invalid_grant`, `access_denied`) fit to show; None for anything else,
    which is never echoed."""
    return error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) else None


class LaunchRefused(Exception):
    """Why a launch stopped, in words fit for the page a clinician sees (no token, no stack)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


ClientKey = RSAKey | ECKey


@dataclass(frozen=True)
class AppSession:
    iss: str
    patient: str
    access_token: str


class SmartClient:
    """The app's side of the launch. Public client with PKCE, or, with a private key, a
    confidential asymmetric one (private_key_jwt)."""

    def __init__(self, settings: Settings, fhir: FhirClient, sessions: SessionStore, key: ClientKey | None) -> None:
        assert settings.smart_client_id is not None and settings.public_base_url is not None
        self.client_id = settings.smart_client_id
        self.redirect_uri = f"{settings.public_base_url}/smart/callback"
        self.scope = _SCOPES[settings.smart_scope_version]
        self.session_s = settings.smart_session_s
        self._fhir = fhir
        self._sessions = sessions
        self._key = key

    @property
    def public_keys(self) -> dict[str, Any] | None:
        """The key set to publish for a confidential client; None for a public one."""
        return dict(KeySet([self._key]).as_dict(private=False)) if self._key is not None else None

    async def begin(self, iss: str, launch: str) -> tuple[str, str]:
        """The authorize URL to send the browser to, and the launch's `state`, under which it is
        remembered."""
        try:
            server = self._fhir.server(iss, None)
            config = await self._fhir.get_document(f"{str(server.base).rstrip('/')}/.well-known/smart-configuration")
        except FhirUnavailable as exc:
            raise LaunchRefused(f"the EHR's FHIR server cannot be used: {exc.reason}", 502) from None
        authorize, token = config.get("authorization_endpoint"), config.get("token_endpoint")
        if not isinstance(authorize, str) or not isinstance(token, str):
            raise LaunchRefused("the EHR's SMART configuration names no authorization or token endpoint", 502)
        methods = config.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise LaunchRefused("the EHR's authorization server does not offer PKCE S256", 502)
        try:  # the same allowlist and guard as iss
            authorize_url = str(self._fhir.server(authorize, None).base)
            self._fhir.server(token, None)
        except FhirUnavailable as exc:
            raise LaunchRefused(f"the EHR's SMART endpoints cannot be used: {exc.reason}", 502) from None
        state, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(64)
        pending = {"iss": iss, "token_endpoint": token, "verifier": verifier}
        await self._keep("smart-launch", state, pending, LAUNCH_TTL_S)
        authorize_at = str(
            prepare_grant_uri(
                authorize_url,
                self.client_id,
                "code",
                redirect_uri=self.redirect_uri,
                scope=self.scope,
                state=state,
                aud=iss,
                launch=launch,
                code_challenge=create_s256_code_challenge(verifier),
                code_challenge_method="S256",
            )
        )
        return authorize_at, state

    async def complete(self, state: str, code: str) -> tuple[str, str, int]:
        """The code exchanged for a token, kept in a new session: its secret id, the handle of its
        page, and how long it lasts. Each launch has its page and its session, so that two
        patients opened in one browser never show one for the other (from an attack run)."""
        pending = await self._held("smart-launch", state, take=True)
        if pending is None:
            raise LaunchRefused("this sign-in is unknown or has expired (state); open the app from the EHR again")
        form = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=self.redirect_uri,
            code_verifier=pending["verifier"],
            **self._client_authentication(pending["token_endpoint"]),
        )
        try:
            status, answer = await self._fhir.post_form(pending["token_endpoint"], form, _TOKEN_ANSWER_BYTES)
        except FhirUnavailable as exc:
            raise LaunchRefused(f"the EHR's token endpoint cannot be used: {exc.reason}", 502) from None
        if status != 200:
            error = answer.get("error")
            raise LaunchRefused(f"the EHR refused the sign-in ({error_code(error) or f'HTTP {status}'})", 403)
        access_token, token_type, patient = answer.get("access_token"), answer.get("token_type"), answer.get("patient")
        if not isinstance(access_token, str) or not _ACCESS_TOKEN.fullmatch(access_token):
            raise LaunchRefused("the EHR's token response holds no usable access token", 502)
        if not isinstance(token_type, str) or token_type.lower() != "bearer":  # compared case-insensitively
            raise LaunchRefused("the EHR's token is not a bearer token", 502)
        if not isinstance(patient, str) or not is_fhir_id(patient):
            raise LaunchRefused("the EHR gave no patient in context", 502)
        expires_in = answer.get("expires_in")
        lifetime = min(self.session_s, expires_in) if isinstance(expires_in, int) and expires_in > 0 else self.session_s
        session_id, handle = secrets.token_urlsafe(32), secrets.token_urlsafe(12)
        session = {"iss": pending["iss"], "patient": patient, "access_token": access_token, "page": handle}
        await self._keep("smart-session", session_id, session, lifetime)
        return session_id, handle, lifetime

    async def session(self, session_id: str, handle: str) -> AppSession | None:
        """The session, if it is the one of that page; LaunchRefused when it cannot be read."""
        held = await self._held("smart-session", session_id)
        if held is None or not secrets.compare_digest(held["page"].encode(), handle.encode()):
            return None
        return AppSession(held["iss"], held["patient"], held["access_token"])

    async def _keep(self, kind: str, key: str, value: dict[str, Any], ttl_s: int) -> None:
        try:
            await self._sessions.put(kind, key, value, ttl_s)
        except SharedStateUnavailable:
            raise LaunchRefused("the service cannot keep a sign-in now (its shared store is away)", 503) from None

    async def _held(self, kind: str, key: str, *, take: bool = False) -> dict[str, Any] | None:
        try:
            return await self._sessions.get(kind, key, take=take)
        except SharedStateUnavailable:
            raise LaunchRefused("the service cannot read sign-ins now (its shared store is away)", 503) from None

    def _client_authentication(self, token_endpoint: str) -> dict[str, str]:
        if self._key is None:
            return {"client_id": self.client_id}
        assertion = private_key_jwt_sign(
            self._key,
            self.client_id,
            token_endpoint,
            alg=self._key.alg,
            header={"kid": self._key.kid, "typ": "JWT"},
            expires_in=300,
        )
        return {
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }


def private_key(path: Path) -> ClientKey:
    """A private RSA or EC JWK with its `kid` and `alg`, as the EHR's registration names them;
    ValueError, naming the setting, for anything else (read at start, so that a bad key stops it)."""
    refused = "CDS_SMART_PRIVATE_KEY_FILE must hold one private RSA or EC JWK with kid and alg"
    try:
        key = KeySet.import_key_set({"keys": [json.loads(path.read_text())]}).keys[0]
    except (OSError, ValueError, TypeError, KeyError, IndexError):
        raise ValueError(refused) from None
    if not isinstance(key, RSAKey | ECKey) or not key.is_private or not key.kid or not key.alg:
        raise ValueError(refused)
    if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
        raise ValueError("CDS_SMART_PRIVATE_KEY_FILE holds an RSA key under 2048 bits")
    return key
