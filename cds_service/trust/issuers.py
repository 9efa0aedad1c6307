"""The trusted issuers file (CDS_TRUSTED_ISSUERS_FILE): the EHRs trusted, their keys, and what each
may have of its own (its FHIR servers, threshold profile, silent kinds and snooze scope)."""

from __future__ import annotations

import binascii
import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import yaml
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..fhir.client import within
from ..validation import problems


class IssuerConfigError(Exception):
    """The trusted issuers file is missing or wrong; the message names the file."""


SnoozeScope = Literal["clinician", "patient", "off"]

# A host name or an address (IPv6 as urlsplit gives it, without brackets): no wildcard, no space.
_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|[0-9A-Fa-f:.]{2,45}", re.ASCII)
# The members of a private JWK: an issuers file holds public keys only.
_PRIVATE = frozenset({"d", "p", "q", "dp", "dq", "qi"})


class IssuerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    iss: str = Field(min_length=1)
    # How logs, metrics and the governance page name this EHR (a metric label: a few words, no
    # spaces); the iss when not given.
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    jku: list[str] = []
    tenant: str | None = None
    # Its own FHIR servers: a hook call's fhirServer elsewhere is not fetched from. Any, when left
    # out (within CDS_FHIR_ALLOWED_HOSTS, which binds every issuer); an empty list is refused.
    fhir_servers: list[str] | None = None
    # Its own choices, in place of the settings' (CDS_THRESHOLD_PROFILE, CDS_SILENT_KINDS,
    # CDS_SNOOZE_SCOPE) when given.
    threshold_profile: str | None = Field(None, min_length=1)
    silent_kinds: list[str] | None = None
    snooze_scope: SnoozeScope | None = None

    @property
    def label(self) -> str:
        return self.name or self.iss

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str | None) -> str | None:
        if value == "none":  # the label of calls with authentication off (policies.NO_ISSUER)
            raise ValueError("'none' names the calls made with CDS_AUTH=off: give this EHR another name")
        return value

    @field_validator("fhir_servers")
    @classmethod
    def _bases(cls, value: list[str] | None) -> list[str] | None:
        """Absolute http(s) URLs of a host name or address (no wildcard), without user, query,
        fragment or dot segment (the fhirServer a call names must be one of them or under one,
        fhir/client.py)."""
        if value == []:  # read as "any server" it would lift the restriction it seems to set
            raise ValueError("an empty list: leave fhir_servers out for any FHIR server, or list this EHR's")
        for url in value or ():
            parts = urlsplit(url)
            if (
                parts.scheme.lower() not in ("http", "https")
                or not _HOST.fullmatch(parts.hostname or "")
                or parts.query
                or parts.fragment
                or any(unquote(segment) in (".", "..") for segment in parts.path.split("/"))
            ):
                raise ValueError(f"not a FHIR server base URL (https://ehr.example.org/fhir): {url[:100]!r}")
            if parts.username is not None or parts.password is not None:
                raise ValueError("a FHIR server base URL holds no user name or password")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> IssuerSpec:
        if (self.jwks_url is None) == (self.jwks is None):
            raise ValueError("give either jwks_url or jwks")
        if self.jwks is not None:
            keys = self.jwks.get("keys")
            if isinstance(keys, list) and any(isinstance(k, dict) and _PRIVATE & k.keys() for k in keys):
                raise ValueError("jwks holds a private key: give the EHR's public key only (no d, p or q)")
            try:
                KeySet.import_key_set(self.jwks)  # type: ignore[arg-type]
            except binascii.Error:  # says nothing itself; a placeholder such as "..." is the usual cause
                raise ValueError(
                    "jwks is not a usable key set: a key's value is not base64url (give the key itself, "
                    'not a placeholder such as "...")'
                ) from None
            except KeyError as exc:
                raise ValueError(f"jwks is not a usable key set: {exc} is missing") from None
            except (JoseError, ValueError, TypeError) as exc:
                raise ValueError(f"jwks is not a usable key set: {exc or type(exc).__name__}") from None
        return self


class IssuersFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuers: list[IssuerSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> IssuersFile:
        for what, names in (("issuer", [i.iss for i in self.issuers]), ("name", [i.label for i in self.issuers])):
            if duplicates := sorted({n for n in names if names.count(n) > 1}):
                raise ValueError(f"{what} listed twice: {', '.join(duplicates)}")
        # A SMART launch names its FHIR server, not its issuer: a server two issuers list must mean
        # one threshold profile, or its trend could be drawn under cut-points its cards were not.
        for one, other in combinations(self.issuers, 2):
            if one.threshold_profile != other.threshold_profile and any(
                within(a, [b]) or within(b, [a]) for a in one.fhir_servers or () for b in other.fhir_servers or ()
            ):
                raise ValueError(
                    f"issuers {one.label} and {other.label} list the same FHIR server with different threshold profiles"
                )
        return self


class _Loader(yaml.SafeLoader):
    """YAML that refuses a key given twice: read last-one-wins, a second `fhir_servers` would
    silently undo the first."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        if duplicates := sorted({str(k) for k in keys if keys.count(k) > 1}):
            said = f"key given twice: {', '.join(duplicates)}"
            raise yaml.constructor.ConstructorError(None, None, said, node.start_mark)
        return super().construct_mapping(node, deep=deep)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if duplicates := sorted({k for k in keys if keys.count(k) > 1}):
        raise ValueError(f"key given twice: {', '.join(duplicates)}")
    return dict(pairs)


def load_issuers(path: Path) -> dict[str, IssuerSpec]:
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text, object_pairs_hook=_unique_keys) if path.suffix == ".json" else yaml.load(text, _Loader)
    except FileNotFoundError:
        raise IssuerConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise IssuerConfigError(f"{path}: cannot be read: {exc}") from None
    try:
        parsed = IssuersFile.model_validate(data)
    except ValidationError as exc:
        raise IssuerConfigError(f"{path}: {problems(exc)}") from None
    return {i.iss: i for i in parsed.issuers}
