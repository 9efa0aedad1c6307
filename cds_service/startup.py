"""What a server process checks and says as it starts: the database reached (one clear line when it
cannot be, naming CDS_DATABASE_URL by its host and never its password, not a driver's traceback);
a warning for each risky setting, and for each CDS_* variable that is no setting (a misspelling is
otherwise silently ignored). `serve` and `demo` say these once, before any worker starts."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping

from joserfc.jwk import KeySet
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from .settings import Settings
from .store.database import migrate, open_database
from .trust.issuers import IssuerSpec, load_issuers

logger = logging.getLogger("cds_service")

# Keys whose private half is published, so that anyone can sign a token with them: by RFC 7638
# thumbprint (SHA-256), and the key set URLs they are published at. Trusted in tests and
# development only (docs/trust.md).
PUBLISHED_KEYS = {
    # cds-hooks/sandbox, kid 44823f3d-0b01-4a6c-a80e-b9d3e8a7226f (ES384)
    "s9fOe-KDYD1myZ8YCzleUqJQgrYZL49kVijBxhnZvZc": "the CDS Hooks Sandbox's public key",
}
PUBLISHED_KEY_SETS = {
    "https://sandbox.cds-hooks.org/.well-known/jwks.json": "the CDS Hooks Sandbox's key set",
}


def risky_settings(settings: Settings, workers: int) -> list[str]:
    """What is allowed but unsafe in production, each said with why (CDS_AUTH=off is said by
    cli._serving, in every server process)."""
    said = []
    if workers > 1 and settings.redis_url is None:
        said.append(
            f"{workers} workers without CDS_REDIS_URL: each keeps its own jti replay cache and key sets, "
            "so a token can be used once per worker (set CDS_REDIS_URL to share them)"
        )
    if settings.fhir_allow_insecure:
        said.append(
            "CDS_FHIR_ALLOW_INSECURE=true: FHIR servers over plain http and on loopback or private "
            "addresses are contacted, with the EHR's access token (tests and local work only)"
        )
    said += _weak_secrets(settings)
    if settings.auth == "jwt" and (settings.public_base_url or "").startswith("http://"):
        said.append(
            "CDS_PUBLIC_BASE_URL is plain http: the EHRs' tokens and the patients' data would cross the "
            "network readable (behind a proxy that ends TLS, give its https URL)"
        )
    path = settings.trusted_issuers_file if settings.auth == "jwt" else None
    issuers = load_issuers(path).values() if path is not None else ()
    for issuer in issuers:
        for published in _published(issuer):
            said.append(
                f"the trusted issuer {issuer.iss} is trusted with {published}, whose private key is public: "
                "anyone can sign its tokens (tests and development only)"
            )
    return said


# Fewer different characters than this in a secret: typed by hand (`aaaa...`), not drawn at random
# (`openssl rand -hex 32` gives 16 at most, and all of them in practice).
_FEW_CHARACTERS = 8


def _weak_secrets(settings: Settings) -> list[str]:
    """Secrets long enough to pass their settings' checks that are still guessable, or one used
    twice; said by name, never with the value."""
    secrets = {
        name: secret.get_secret_value()
        for name, secret in (("CDS_ADMIN_TOKEN", settings.admin_token), ("CDS_PSEUDONYM_KEY", settings.pseudonym_key))
        if secret is not None
    }
    said = [
        f"{name} has fewer than {_FEW_CHARACTERS} different characters: make it with `openssl rand -hex 32`"
        for name, value in secrets.items()
        if len(set(value)) < _FEW_CHARACTERS
    ]
    if len(secrets) == 2 and len(set(secrets.values())) == 1:
        said.append("CDS_ADMIN_TOKEN and CDS_PSEUDONYM_KEY are the same secret: whoever signs in to /admin holds both")
    return said


def _published(issuer: IssuerSpec) -> list[str]:
    urls = [u for u in (issuer.jwks_url, *issuer.jku) if u is not None]
    named = [PUBLISHED_KEY_SETS[u] for u in dict.fromkeys(urls) if u in PUBLISHED_KEY_SETS]
    if issuer.jwks is not None:
        keys = KeySet.import_key_set(issuer.jwks).keys  # type: ignore[arg-type]
        named += [PUBLISHED_KEYS[t] for t in (k.thumbprint() for k in keys) if t in PUBLISHED_KEYS]
    return named


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """Each CDS_* variable that is no setting, with the setting it most likely meant. Names are
    matched as pydantic-settings matches them, whatever their case."""
    known = [f"CDS_{name.upper()}" for name in Settings.model_fields]
    said = []
    for name in sorted(environ):
        upper = name.upper()
        if upper.startswith("CDS_") and upper not in known:
            close = difflib.get_close_matches(upper, known, n=1)
            shown = ascii(name)[1:-1][:100]  # as a Python literal: a line break in a name forges no line
            said.append(f"{shown} is no setting" + (f" (did you mean {close[0]}?)" if close else ""))
    return said


def warn(said: Iterable[str]) -> None:
    for line in said:
        logger.warning(line)


_PROBLEM_MAX = 300  # characters of a driver's message: enough for "Connect call failed ('10.0.0.5', 5432)"


class DatabaseUnreachable(Exception):
    """The database could not be opened or migrated; the message says where and why, never a password."""


def where(url: str) -> str:
    """The database as a message may name it: driver, host, port and database (a SQLite file's
    path); no user name, password or query (which may hold either). The URL parses: settings.py
    refuses one that does not."""
    parsed = make_url(url)
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
    password = make_url(url).password
    if password:
        said = said.replace(password, "***")
    if len(said) > _PROBLEM_MAX:
        said = f"{said[:_PROBLEM_MAX]}…"
    because = f"{type(cause).__name__}: {said}" if said else type(cause).__name__
    return f"the database at CDS_DATABASE_URL ({where(url)}) cannot be used: {because}"


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
