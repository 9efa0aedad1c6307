"""Renders card kinds into CDS Hooks cards from the wording, sources and reasons in `cards/`."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .clinical.context import CrampContext
from .clinical.electrolytes import Finding
from .clinical.results import LabResult
from .content import Content, Profile, SourceSpec, SuggestionSpec, format_number
from .protocol import Action, Card, Coding, Link, Source, Suggestion

SUMMARY_LIMIT = 139  # CDS Hooks: a summary SHALL be under 140 characters


def _single_blank_lines(text: str) -> str:
    """Template sections left out leave runs of blank lines (str.replace: a tenth of a regex's time)."""
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text


@dataclass(frozen=True)
class ResultView:
    """A lab result as cards show it; every text is formatted by the service, none is raw FHIR."""

    name: str
    code: str
    shown: str  # "20.83 ng/mL (52 nmol/L)"
    short: str  # "20.83 ng/mL"
    date: str
    reported: str | None
    proxy: bool
    status_unknown: bool
    problem: str | None
    old: bool = False


def _date(when: datetime | None) -> str:
    return when.date().isoformat() if when is not None else "undated"


def result_view(result: LabResult, *, old: bool = False) -> ResultView:
    converted = result.reported_unit is not None and result.reported_value is not None
    if result.value is not None:
        value = format_number(result.value, as_reported=not converted)
        short = f"{result.comparator or ''}{value} {result.unit}"
    else:
        short = "not classified"
    reported = None
    if converted:
        value = format_number(result.reported_value, as_reported=True)  # type: ignore[arg-type]
        reported = f"{result.comparator or ''}{value} {result.reported_unit}"
    shown = f"{short} ({reported})" if reported else short
    return ResultView(
        name=result.name,
        code=result.code,
        shown=shown,
        short=short,
        date=_date(result.effective),
        reported=reported,
        proxy=result.role == "proxy",
        status_unknown=result.status == "unknown",
        problem=result.problem,
        old=old,
    )


@dataclass(frozen=True)
class FindingView:
    name: str
    abbreviation: str
    shown: str
    short: str
    date: str
    flag: str
    critical: bool
    range: str
    range_from_laboratory: bool
    total: str | None  # the total calcium a Payne correction started from
    albumin: str | None


class CardRenderer:
    def __init__(self, content: Content, profile: Profile) -> None:
        self._content = content
        self._catalogue = content.catalogue
        self._profile = profile
        self._names = content.catalogue.analyte_names
        self._abbreviations = content.catalogue.analyte_abbreviations
        reason_system = self._catalogue.systems.override_reason
        self._override_reasons = [
            Coding(system=reason_system, code=r.code, display=r.display) for r in self._catalogue.override_reasons
        ]

    def finding_view(self, finding: Finding) -> FindingView:
        unit = finding.unit
        as_measured = result_view(finding.result)
        if finding.albumin is None:
            short, reported = as_measured.short, as_measured.reported
        else:
            short, reported = f"{format_number(finding.value)} {unit}", None
        r = finding.range
        if r.low is not None and r.high is not None:
            span = f"{format_number(r.low)}-{format_number(r.high)} {unit}"
        elif r.low is not None:
            span = f"at least {format_number(r.low)} {unit}"
        else:
            span = f"at most {format_number(r.high)} {unit}"  # type: ignore[arg-type]
        albumin = finding.albumin
        return FindingView(
            name=self._names[finding.measure],
            abbreviation=self._abbreviations[finding.measure],
            shown=f"{short} ({reported})" if reported else short,
            short=short,
            date=_date(finding.result.effective),
            flag=finding.flag or "normal",
            critical=finding.critical,
            range=span,
            range_from_laboratory=r.from_laboratory,
            total=as_measured.shown if albumin else None,
            albumin=f"{result_view(albumin).shown}" if albumin else None,
        )

    def analyte_names(self, analytes: Iterable[str]) -> list[str]:
        return [self._names[a] for a in analytes]

    def _source(self, ref: str) -> SourceSpec:
        return self._catalogue.sources[self._profile.source if ref == "profile" else ref]

    def render(
        self,
        kind: str,
        patient_id: str,
        *,
        critical: bool = False,
        order_for: Iterable[str] = (),
        suggestions: list[Suggestion] | None = None,
        **values: Any,
    ) -> Card:
        """One card of `kind`; `order_for` names the analytes whose order suggestions to offer, and
        `suggestions` adds those a service built itself (around a draft order)."""
        spec = self._catalogue.cards[kind]
        values = {
            "unavailable": [],
            "context": CrampContext(),
            **values,
            "profile": self._profile,
            "critical": critical,
            "cite": [self._source(ref) for ref in spec.cite],
        }
        summary = " ".join(self._content.summaries[kind].render(values).split())
        if len(summary) > SUMMARY_LIMIT:
            summary = summary[: SUMMARY_LIMIT - 1].rstrip() + "…"
        detail = _single_blank_lines(self._content.details[kind].render(values)).strip()
        source = self._source(spec.source)
        wanted = set(order_for)
        suggestions = [
            self._order_suggestion(s, patient_id) for s in spec.suggestions if wanted.intersection(s.covers)
        ] + (suggestions or [])
        links = [
            Link(label=src.label, url=src.url, type="absolute")
            for src in (self._source(ref) for ref in spec.links)
            if src.url is not None
        ]
        return Card(
            uuid=uuid.uuid4(),
            summary=summary,
            detail=detail or None,
            indicator=spec.indicator_critical if critical and spec.indicator_critical else spec.indicator,
            source=Source(
                label=source.label,
                url=source.url,
                topic=Coding(system=self._catalogue.systems.card_kind, code=kind),
            ),
            suggestions=suggestions or None,
            selectionBehavior="any" if suggestions else None,
            overrideReasons=self._override_reasons,
            links=links or None,
        )

    def service_request(self, orderable: str, subject: dict[str, Any], **references: dict[str, Any]) -> dict[str, Any]:
        """A draft ServiceRequest (FHIR R4) for one of the content's orderable tests."""
        test = self._content.codes.orderable[orderable]
        return {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {
                "coding": [{"system": self._content.codes.system, "code": test.code, "display": test.display}],
                "text": test.display,
            },
            "subject": subject,
            **references,
        }

    def _order_suggestion(self, spec: SuggestionSpec, patient_id: str) -> Suggestion:
        request = self.service_request(spec.orderable, {"reference": f"Patient/{patient_id}"})
        return Suggestion(
            label=spec.label,
            uuid=uuid.uuid4(),
            isRecommended=True,
            actions=[Action(type="create", description=spec.description, resource=request)],
        )
