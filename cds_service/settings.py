"""The one settings object: environment variables prefixed CDS_ (DESIGN.md, "Public interface")."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    log_format: Literal["json", "text"] = "text"

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

    @field_validator("fhir_allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [host.strip().lower() for host in value.split(",") if host.strip()]
        return value
