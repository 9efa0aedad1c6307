"""The trusted issuers file (CDS_TRUSTED_ISSUERS_FILE): the EHRs trusted and their keys."""

from __future__ import annotations

import binascii
import json
from pathlib import Path
from typing import Any

import yaml
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..validation import problems


class IssuerConfigError(Exception):
    """The trusted issuers file is missing or wrong; the message names the file."""


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
