"""Each trusted EHR's own choices over the settings' (its entry in the trusted issuers file): the
services it is answered by (its threshold profile and silent kinds), whom a snooze hides a card
from, the FHIR servers read for it, and the name logs, metrics and the report give it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .content.loader import Content, ContentError
from .fhir.client import within
from .services.base import CdsService
from .services.registry import build_services
from .settings import Settings
from .trust.issuers import IssuerConfigError, IssuerSpec, SnoozeScope

NO_ISSUER = "none"  # the label of calls made with authentication off (development only)


@dataclass(frozen=True)
class Policy:
    label: str  # a bounded metric label: an issuer's configured name, or NO_ISSUER
    profile: str  # the 25(OH)D threshold profile
    services: Mapping[str, CdsService]
    snooze_scope: SnoozeScope
    fhir_servers: tuple[str, ...]  # the only FHIR server bases read for this EHR; any when empty


class Policies:
    def __init__(self, default: Policy, by_issuer: Mapping[str, Policy]) -> None:
        self.default = default
        self._by_issuer = by_issuer

    def of(self, issuer: str | None) -> Policy:
        """The issuer's policy; the settings' for a call without one (authentication off)."""
        return self._by_issuer.get(issuer, self.default) if issuer is not None else self.default

    def of_fhir_server(self, url: str) -> Policy:
        """The policy of the EHR that lists this FHIR server among its own (a SMART launch names
        its FHIR server, not its issuer); the settings' when none does."""
        mine = (p for p in self._by_issuer.values() if p.fhir_servers and within(url, p.fhir_servers))
        return next(mine, self.default)

    def all(self) -> list[Policy]:
        return [self.default, *self._by_issuer.values()]


def build_policies(
    content: Content,
    settings: Settings,
    issuers: Mapping[str, IssuerSpec] | None,
    trend_url: str | None = None,
) -> Policies:
    """Services are built once per distinct threshold profile and set of silent kinds, and shared
    by the issuers that choose the same. An issuer's unknown profile or card kind stops the start,
    naming the issuer."""
    built: dict[tuple[str, frozenset[str]], Mapping[str, CdsService]] = {}

    def services(profile: str, silent: list[str] | None, where: str = "CDS_SILENT_KINDS") -> Mapping[str, CdsService]:
        key = (profile, content.silent_kinds(silent, where))
        if key not in built:
            built[key] = build_services(content, settings, trend_url, profile=profile, silent=key[1])
        return built[key]

    default = Policy(
        NO_ISSUER,
        settings.threshold_profile,
        services(settings.threshold_profile, settings.silent_kinds),
        settings.snooze_scope,
        (),
    )
    by_issuer: dict[str, Policy] = {}
    for spec in (issuers or {}).values():
        profile = spec.threshold_profile or settings.threshold_profile
        try:
            if spec.silent_kinds is not None:
                chosen = services(profile, spec.silent_kinds, "silent_kinds")
            else:
                chosen = services(profile, settings.silent_kinds)
        except ContentError as exc:
            where: Path | str = settings.trusted_issuers_file or "the trusted issuers file"
            raise IssuerConfigError(f"{where}: issuer {spec.label}: {exc}") from None
        by_issuer[spec.iss] = Policy(
            spec.label, profile, chosen, spec.snooze_scope or settings.snooze_scope, tuple(spec.fhir_servers or ())
        )
    return Policies(default, by_issuer)
