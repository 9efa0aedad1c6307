"""The one settings object: environment variables prefixed CDS_ (DESIGN.md, "Public interface")."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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
