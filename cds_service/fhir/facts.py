"""Patient, Condition and MedicationRequest JSON -> the small facts the rules read.

As for Observations, only the fields read here are validated; a malformed resource is skipped and
counted, and resources about another patient are ignored.
"""

from __future__ import annotations

import calendar
import contextlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

import msgspec

from ..clinical.cramp_context import ConditionFact, MedicationFact, product
from ..clinical.trend import Course
from ..content.schema import ContextRules, dotless
from .labs import DateOutOfRange, parse_fhir_datetime
from .models import (
    CodeableConcept,
    Lite,
    MedicationRequest,
    Period,
    Read,
    Reference,
    Resource,
    Tally,
    own,
    read_as,
)


class _Condition(Resource):
    code: CodeableConcept | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    recordedDate: str | None = None
    onsetDateTime: str | None = None


class _Patient(Lite):
    id: str | None = None
    birthDate: str | None = None


# Bounded quantifiers only: linear in any text.
_BIRTH_DATE = re.compile(r"(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2}))?)?", re.ASCII)


_SHOWN_CHARS = 200  # a name shown on a page: the patient's, a medicine as ordered


def patient_name(resource: Any) -> str | None:
    """A Patient's name as a person reads it: its official (else first) name's text, else its given
    names and family; None without one. Bounded: a name is shown, never trusted."""
    names = resource.get("name") if isinstance(resource, dict) else None
    names = [n for n in names if isinstance(n, dict)] if isinstance(names, list) else []
    if not names:
        return None
    name = next((n for n in names if n.get("use") == "official"), names[0])
    if isinstance(text := name.get("text"), str) and text.strip():
        return text.strip()[:_SHOWN_CHARS]
    given = name.get("given")
    parts = [g for g in given if isinstance(g, str)] if isinstance(given, list) else []
    if isinstance(family := name.get("family"), str):
        parts.append(family)
    return " ".join(" ".join(parts).split())[:_SHOWN_CHARS] or None


def birth_date(resource: Any, patient_id: str) -> date | None:
    """The patient's birth date, or the latest day a partial one allows ("1961" is 1961-12-31), so
    that an age computed from it is never older than the patient may be; None when unknown, and for
    a day with no day before or after it (0001-01-01, 9999-12-31), no date, as for every FHIR date
    (labs.parse_fhir_datetime)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        return None
    try:
        patient = read_as(_Patient, resource)
    except msgspec.ValidationError:
        return None
    if patient.id != patient_id or patient.birthDate is None:
        return None
    match = _BIRTH_DATE.fullmatch(patient.birthDate)
    if match is None:
        return None
    year = int(match["y"])
    try:
        if match["d"] is not None:
            born = date(year, int(match["m"]), int(match["d"]))
        else:
            month = int(match["m"] or 12)
            born = date(year, month, calendar.monthrange(year, month)[1])
    except ValueError:  # no such month or day
        return None
    return born if date.min < born < date.max else None


# A medicine's names are read as far as a name goes: its first 32 texts, each to 1,000 characters
# (the longest RxNorm product names hold about 200), so that a hostile text cannot hold the event
# loop (rulebook, "Medicines in text").
_NAMES, _NAME_CHARS = 32, 1000


def medications_by_reference(resources: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """The Medication resources among `resources`, by "Medication/<id>"."""
    return {
        f"Medication/{r['id']}": r
        for r in resources
        if isinstance(r, dict) and r.get("resourceType") == "Medication" and isinstance(r.get("id"), str)
    }


def medication_key(reference: str) -> str:
    """ "Medication/<id>" for a reference written relative, absolute or versioned."""
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return "/".join(parts[-2:])


def _authored(text: str | None, *, deciding: bool = False) -> datetime | None:
    """A date the rules read from a Condition or MedicationRequest; None when absent or unreadable
    (the resource is then undated: a medicine is still taken, its start unknown). Where the date
    decides whether the resource counts at all (`deciding`: an encounter diagnosis), one that UTC
    cannot hold (0001-01-01T00:00:00+14:00) makes the resource malformed: DateOutOfRange is raised,
    for the reader to skip and count it (rulebook, "Dates and windows")."""
    try:
        return parse_fhir_datetime(text) if text is not None else None
    except DateOutOfRange:
        if deciding:
            raise
        return None
    except ValueError:
        return None


def _codes(concept: CodeableConcept | None) -> set[str]:
    return {c.code for c in concept.coding if c.code} if concept else set()


def medication_fact(
    concept: CodeableConcept | None,
    reference: Reference | None,
    contained: list[dict[str, Any]],
    rxnorm: str,
    authored: datetime | None = None,
    included: Mapping[str, Any] | None = None,
    routes: tuple[frozenset[str], ...] = (),
) -> MedicationFact:
    """The RxNorm codes and the names (lower case) of what a MedicationRequest orders. A
    `medicationReference` is resolved from the request's contained resources, else from the
    Medications `included` beside it (by "Medication/<id>"); its `display` is read as well, and
    the Medication's dose form with its names."""
    concepts = [concept] if concept else []
    names: list[str] = []
    if reference is not None:
        if reference.display:
            names.append(reference.display)
        target = reference.reference or ""
        if target.startswith("#"):
            found = next((r for r in contained if isinstance(r, dict) and f"#{r.get('id')}" == target), None)
        else:
            found = (included or {}).get(medication_key(target))
        if isinstance(found, dict) and found.get("resourceType") == "Medication":
            for part in ("code", "form"):
                with contextlib.suppress(msgspec.ValidationError):
                    concepts.append(read_as(CodeableConcept, found.get(part) or {}))
    codes: set[str] = set()
    for c in concepts:
        names += [text for text in (c.text, *(x.display for x in c.coding)) if text]
        codes |= {x.code for x in c.coding if x.system == rxnorm and x.code}
    read = "\n".join(name[:_NAME_CHARS] for name in names[:_NAMES])
    return MedicationFact(frozenset(codes), read.lower(), authored, routes)


class ContextReader:
    def __init__(self, rules: ContextRules) -> None:
        self._systems = rules.systems
        self._active = frozenset(rules.active_statuses)
        self._refused = frozenset(rules.refused_verification)

    def conditions(self, resources: Iterable[Any], patient_id: str) -> Read[ConditionFact]:
        tally = Tally()
        facts = []
        for condition in own(resources, "Condition", _Condition, patient_id, tally):
            status = _codes(condition.clinicalStatus)
            if _codes(condition.verificationStatus) & self._refused or (status and not status & self._active):
                continue
            codes = frozenset(
                (c.system, dotless(c.code) if c.system == self._systems.icd10 else c.code)
                for c in (condition.code.coding if condition.code else [])
                if c.system and c.code
            )
            # No clinicalStatus (Epic's encounter diagnoses): the clinical core decides by its date,
            # and a date of it that UTC cannot hold makes it malformed.
            recorded = None
            if not status:
                try:
                    recorded = _authored(condition.recordedDate or condition.onsetDateTime, deciding=True)
                except DateOutOfRange:
                    tally.malformed += 1
                    continue
            facts.append(ConditionFact(codes, undated_status=not status, recorded=recorded))
        return tally.read(facts)

    def medications(self, resources: Iterable[Any], patient_id: str) -> Read[MedicationFact]:
        """The active MedicationRequests (home medicines, `intent` plan, included), their
        Medications resolved from what came with them (`_include=MedicationRequest:medication`)."""
        resources = list(resources)
        included = medications_by_reference(resources)
        tally = Tally()
        return tally.read(
            medication_fact(
                r.medicationCodeableConcept,
                r.medicationReference,
                r.contained,
                self._systems.rxnorm,
                _authored(r.authoredOn),  # a date no calendar holds: still taken, its start unknown
                included,
                r.routes(),
            )
            for r in own(resources, "MedicationRequest", MedicationRequest, patient_id, tally)
            if r.status.strip().lower() == "active"
        )


class _Bounds(Lite):
    boundsPeriod: Period | None = None


class _Timing(Lite):
    repeat: _Bounds | None = None


class _TimedDosage(Lite):
    timing: _Timing | None = None


class _Dispense(Lite):
    validityPeriod: Period | None = None


class _Timed(Lite):
    """When a MedicationRequest's course runs: read apart from the request, so that a malformed
    period leaves the course undated, never unread."""

    dosageInstruction: list[_TimedDosage] = []
    dispenseRequest: _Dispense | None = None


# The statuses of a request that was taken, and whether it still is.
_COURSE_STATUSES = {"active": True, "completed": False, "stopped": False, "on-hold": False}


def courses(resources: Iterable[Any], patient_id: str, rules: ContextRules) -> Read[Course]:
    """The vitamin D and calcium products ordered for the patient, each from its start (the dosage's
    or the dispense's period, else `authoredOn`) to its end; an active one without an end runs on.
    Cancelled, draft and entered-in-error requests were never taken (rulebook, "The trend")."""
    resources = list(resources)
    included = medications_by_reference(resources)
    tally = Tally()
    found: list[Course] = []
    for raw in resources:
        for request in own((raw,), "MedicationRequest", MedicationRequest, patient_id, tally):
            active = _COURSE_STATUSES.get(request.status.strip().lower())
            if active is None:  # never taken
                tally.ignored += 1
                continue
            fact = medication_fact(
                request.medicationCodeableConcept,
                request.medicationReference,
                request.contained,
                rules.systems.rxnorm,
                None,
                included,
                request.routes(),
            )
            held = product(fact, rules)
            if held is None:  # neither vitamin D nor calcium
                tally.ignored += 1
                continue
            start, end = _course_days(raw, request.authoredOn)
            holds = tuple(k for k, named in (("vitamin_d", held.vitamin_d), ("calcium", held.calcium)) if named)
            found.append(Course(held.name, holds, start, end, active, _as_ordered(request)))
    return tally.read(found)


def _as_ordered(request: MedicationRequest) -> str:
    """The medicine as the order names it ("cholecalciferol 50000 UNT Oral Capsule"): its strength
    tells a weekly course from a daily one, which the product's name does not."""
    concept, reference = request.medicationCodeableConcept, request.medicationReference
    named = [concept.text, *(c.display for c in concept.coding)] if concept else []
    named.append(reference.display if reference else None)
    return next((" ".join(n.split())[:_SHOWN_CHARS] for n in named if n and n.strip()), "")


def _course_days(raw: dict[str, Any], authored: str | None) -> tuple[date | None, date | None]:
    """The first and last UTC day of a course; None where not recorded or not a date."""
    try:
        timed = read_as(_Timed, raw)
    except msgspec.ValidationError:
        timed = _Timed()
    periods = [d.timing.repeat.boundsPeriod for d in timed.dosageInstruction if d.timing and d.timing.repeat]
    if timed.dispenseRequest is not None:
        periods.append(timed.dispenseRequest.validityPeriod)
    starts = [p.start for p in periods if p is not None and p.start] + ([authored] if authored else [])
    ends = [p.end for p in periods if p is not None and p.end]
    return _first_day(starts), _first_day(ends)


def _first_day(texts: list[str]) -> date | None:
    """The UTC day of the first text that is a date."""
    for text in texts:
        when = _authored(text)
        if when is not None:
            return when.astimezone(UTC).date()
    return None
