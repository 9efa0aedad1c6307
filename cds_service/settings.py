"""The one settings object: environment variables prefixed CDS_ (docs/settings.md lists them)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

# A database or Redis URL its parser refuses: said without the URL, whose parser's own message would
# quote its parts (a password read as a port).
_UNREADABLE_URL = "is not a URL that can be read (a password holding / # ? or @ must be percent-encoded)"
_ORIGIN = re.compile(r"https?://[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::[0-9]{1,5})?", re.ASCII)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CDS_", extra="ignore", frozen=True)

    threshold_profile: str = Field(
        "endocrine-2011", description="25(OH)D cut-points: a profile of cards/thresholds.yaml"
    )
    content_dir: Path | None = Field(None, description="clinical content to use instead of the packaged cards/")
    vitd_opt_in_codes: bool = Field(
        False, description="read the opt-in 25(OH)D codes (D2 only, vitamin D and metabolites) as totals"
    )
    max_body_bytes: int = Field(5 * 1024 * 1024, gt=0, description="larger request bodies get 413")
    database_url: str = Field(
        "sqlite+aiosqlite:///data/cds-service.sqlite",
        description="SQLAlchemy URL of the feedback store: SQLite (default) or postgresql+asyncpg://...",
    )
    log_format: Literal["json", "text"] = Field("json", description="json for log collectors, text for people")
    workers: int = Field(1, ge=1, description="worker processes of `serve` (its --workers option wins)")
    shutdown_grace_s: float = Field(
        20.0, gt=0, description="on SIGTERM, time in-flight calls get to finish; new connections are refused at once"
    )
    redis_url: str | None = Field(
        None, description="redis://...: the JWT replay cache and key sets shared by all workers and replicas"
    )
    silent_kinds: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="card kinds that run silent (decided, recorded, never shown): comma-separated, or all; "
        "unset: each kind's mode in cards/catalogue.yaml",
    )
    pseudonym_key: SecretStr | None = Field(
        None,
        min_length=32,
        description="secret for the keyed patient pseudonyms that snoozes are stored under (32 characters or more); "
        "unset: no snoozing, nothing about the patient stored",
    )
    snooze_scope: Literal["clinician", "patient", "off"] = Field(
        "clinician",
        description="whom an override's snooze hides a card from: the clinician who overrode it, for that patient "
        "(context.userId), or every clinician of the patient; off: no snoozing",
    )
    admin_token: SecretStr | None = Field(
        None,
        min_length=16,
        description="token of the governance page at /admin (16 characters or more); unset: no /admin",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins of browser-based EHRs allowed to call the service; * for any"
    )

    # Trusting the caller (CDS Hooks: every call carries a JWT signed by the EHR)
    auth: Literal["jwt", "off"] = Field("jwt", description="off: no JWT check (development only)")
    trusted_issuers_file: Path | None = Field(
        None, description="JSON or YAML list of the EHRs trusted, with their keys"
    )
    public_base_url: str | None = Field(
        None,
        description="the service's base URL as the EHRs call it (https://cds.example.org); every JWT's aud "
        "is this URL joined with the path called. Required with auth=jwt",
    )
    jwt_algorithms: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS384"],
        description="signature algorithms accepted; asymmetric only",
    )
    jwt_leeway_s: int = Field(60, ge=0, le=300, description="clock skew allowed on exp, iat and nbf")
    jwt_max_lifetime_s: int = Field(600, gt=0, description="longest exp - iat accepted")
    jwt_replay_cache_size: int = Field(100_000, gt=0, description="jti values remembered until they expire")

    # Fetching what the EHR did not prefetch
    fhir_timeout_s: float = Field(2.0, gt=0, description="time allowed for one FHIR query")
    fhir_deadline_s: float = Field(4.0, gt=0, description="time allowed for all the FHIR queries of one hook call")
    fhir_max_pages: int = Field(5, ge=1, description="Bundle pages followed per query")
    fhir_max_resources: int = Field(1000, ge=1, description="resources read per query, all pages together")
    fhir_max_bytes: int = Field(20 * 1024 * 1024, gt=0, description="largest FHIR response body read")
    fhir_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="when set, the only FHIR server host names contacted"
    )
    fhir_allow_insecure: bool = Field(
        False, description="also contact http and loopback or private FHIR servers (tests and local work only)"
    )

    # The SMART app (docs/smart-app.md): on when a client id is set, at CDS_PUBLIC_BASE_URL/smart/launch
    smart_client_id: str | None = Field(
        None, description="the client id an EHR registered the SMART app under; the app is off without it"
    )
    smart_private_key_file: Path | None = Field(
        None,
        description="a private JWK (RSA or EC, with kid and alg) to authenticate as a confidential asymmetric "
        "client (private_key_jwt), its public key published at /smart/jwks.json; a public client with PKCE without it",
    )
    smart_scope_version: Literal["v1", "v2"] = Field(
        "v2", description="SMART scopes as v2 (patient/Observation.rs) or v1 (patient/Observation.read)"
    )
    smart_frame_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="the EHR origins allowed to show the SMART app in a frame"
    )
    smart_session_s: int = Field(1800, gt=0, le=43200, description="how long a SMART app session lasts")
    smart_trend_years: int = Field(5, ge=1, le=20, description="the years of results the SMART app shows")

    @field_validator(
        "fhir_allowed_hosts", "cors_origins", "jwt_algorithms", "silent_kinds", "smart_frame_origins", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        """An absolute http(s) URL with a host and no credentials, query or fragment; stored without
        its trailing slash, so that the path called is appended to it as it is."""
        value = (value or "").strip()
        if not value:  # CDS_PUBLIC_BASE_URL= is unset
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("CDS_PUBLIC_BASE_URL must be an absolute http or https URL (https://cds.example.org)")
        if parts.username is not None or parts.password is not None or "?" in value or "#" in value:
            raise ValueError("CDS_PUBLIC_BASE_URL must hold no user name, password, query or fragment")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """An async driver the service ships with; said without the URL, which may hold a password."""
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        try:
            make_url(value)
        except (ArgumentError, ValueError):
            raise ValueError(_UNREADABLE_URL) from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        """Said without the URL, which may hold a password."""
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        if value:
            try:
                parse_url(value)  # type: ignore[no-untyped-call]
            except ValueError:
                raise ValueError(_UNREADABLE_URL) from None
        return value or None

    @field_validator("fhir_allowed_hosts")
    @classmethod
    def _host_names(cls, value: list[str]) -> list[str]:
        return [host.lower() for host in value]

    @field_validator("smart_frame_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        """Origins only (`https://ehr.example.org`, a port at most): each goes into a
        Content-Security-Policy as it is, where a `;`, a space or a `*` would change it."""
        if refused := [origin for origin in value if not _ORIGIN.fullmatch(origin)]:
            raise ValueError(
                f"CDS_SMART_FRAME_ORIGINS holds what is no origin (https://ehr.example.org): {len(refused)}"
            )
        return value

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        # The key types the issuers file holds are EC and RSA; EdDSA (an OKP key) is refused here
        # rather than accepted and never matched.
        allowed = {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
        if refused := [alg for alg in value if alg not in allowed]:
            raise ValueError(f"not a signature algorithm this service checks (ES, RS, PS): {', '.join(refused)}")
        return value

    @property
    def smart_launch_url(self) -> str | None:
        """Where an EHR launches the SMART app, which the cards link to; None when it is not set up."""
        if self.smart_client_id and self.public_base_url:
            return f"{self.public_base_url}/smart/launch"
        return None

    def check_serving(self) -> None:
        """What serving needs beyond settings that each validate, checked before a server starts
        (`serve` and each of its workers; the JWT middleware checks it again): ValueError naming
        the settings missing and why. Not a validator, since the commands that serve no one
        (`report`, `evaluate`, `check-content`) read the same settings and need neither."""
        if self.smart_client_id:
            # Anyone may open /smart/launch: its iss, and the endpoints iss names, must be the
            # EHRs' own, or a stranger's server could take the code (docs/smart-app.md).
            for needed, value in (
                ("CDS_PUBLIC_BASE_URL", self.public_base_url),
                ("CDS_FHIR_ALLOWED_HOSTS", self.fhir_allowed_hosts),
            ):
                if not value:
                    raise ValueError(f"CDS_SMART_CLIENT_ID needs {needed} (the SMART app, docs/smart-app.md)")
        if self.auth != "jwt":
            return
        missing = [
            name
            for name, value in (
                ("CDS_TRUSTED_ISSUERS_FILE", self.trusted_issuers_file),
                ("CDS_PUBLIC_BASE_URL", self.public_base_url),
            )
            if value is None
        ]
        if missing:
            raise ValueError(jwt_needs(*missing))


def jwt_needs(*missing: str) -> str:
    """The message that refuses to start CDS_AUTH=jwt without these settings, saying why each."""
    why = " ".join(f"{name}: {_WHY[name]}." for name in missing)
    return f"CDS_AUTH=jwt needs {' and '.join(missing)}. {why} (CDS_AUTH=off, for development only, does not.)"


# Why CDS_AUTH=jwt needs each: said when a server refuses to start without it.
_WHY = {
    "CDS_TRUSTED_ISSUERS_FILE": "the EHRs trusted and their keys",
    "CDS_PUBLIC_BASE_URL": "the service's base URL as the EHRs call it (https://cds.example.org), which every "
    "token's aud must name, joined with the path called; aud is never taken from the request's Host header, "
    "since that would let a token minted for another service be replayed here",
}
