"""The few FHIR datatypes the readers validate, and the result of a read.

Only the fields the service reads are modelled, as msgspec structs: validating a whole resource
with fhir.resources costs about 200 µs and a pydantic model of these fields 10 µs, msgspec about
3 µs, and a heavy patient brings hundreds. A resource that fails is counted as malformed and
skipped, and one about another patient is counted and ignored.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Generic, Literal, TypeVar

import msgspec

from .references import names_patient

T = TypeVar("T")
M = TypeVar("M", bound="Resource")
L = TypeVar("L", bound="Lite")


class Lite(msgspec.Struct, omit_defaults=True):
    """Strict types (a number is never a string), unknown fields ignored."""


def read_as(model: type[L], raw: Any) -> L:
    """`raw` as `model`; msgspec.ValidationError when it does not fit."""
    return msgspec.convert(raw, model)


class Coding(Lite):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(Lite):
    coding: list[Coding] = []
    text: str | None = None


class Reference(Lite):
    reference: str | None = None
    display: str | None = None


class Quantity(Lite):
    # A JSON number as it came: an int stays one ("3" is shown as 3, "3.0" as 3.0), and a Decimal
    # keeps the digits it was written with ("1.20"; json_bodies.py). Checked in __post_init__, as
    # msgspec would take a string for a Decimal field.
    value: Any = None
    comparator: Literal["<", "<=", ">=", ">"] | None = None
    unit: str | None = None
    system: str | None = None
    code: str | None = None

    def __post_init__(self) -> None:
        value, kind = self.value, type(self.value)
        if value is None or kind is int or (kind is float and math.isfinite(value)):
            return
        if kind is Decimal and value.is_finite():
            return
        raise ValueError("Quantity.value is not a finite number")


class Meta(Lite):
    lastUpdated: str | None = None


class Period(Lite):
    start: str | None = None
    end: str | None = None


class Resource(Lite):
    id: str | None = None
    subject: Reference | None = None


class Dosage(Lite):
    route: CodeableConcept | None = None


class MedicationRequest(Resource, kw_only=True):
    """The medication list's entries and the draft orders alike."""

    status: str
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    contained: list[dict[str, Any]] = []
    authoredOn: str | None = None
    dosageInstruction: list[Dosage] = []

    def routes(self) -> tuple[frozenset[str], ...]:
        """Each dosage instruction's route: its codes, and the first word of its text and displays
        in lower case ("Topical route" is topical, "oral (not topical)" oral)."""
        found = []
        for dosage in self.dosageInstruction:
            if dosage.route is not None:
                texts = (dosage.route.text, *(c.display for c in dosage.route.coding))
                first = {words[0] for t in texts if t and (words := t.lower().split())}
                found.append(frozenset({c.code for c in dosage.route.coding if c.code} | first))
        return tuple(found)


@dataclass(frozen=True)
class Read(Generic[T]):
    items: tuple[T, ...]
    malformed: int  # resources skipped because they were not valid
    other_patient: int  # resources about another patient (or none), ignored
    ignored: int = 0  # resources of no interest: another type or code, a status that does not count, a repeat
    old: int = 0  # results left unread, dated before any window their analyte is judged in


@dataclass
class Tally:
    malformed: int = 0
    other_patient: int = 0
    ignored: int = 0
    old: int = 0

    def read(self, items: Iterable[T]) -> Read[T]:
        return Read(tuple(items), self.malformed, self.other_patient, self.ignored, self.old)


def own(resources: Iterable[Any], resource_type: str, model: type[M], patient_id: str, tally: Tally) -> Iterator[M]:
    """The valid resources of one type about this patient; every other one is counted in `tally`."""
    for raw in resources:
        if not isinstance(raw, dict) or raw.get("resourceType") != resource_type:
            tally.ignored += 1
            continue
        try:
            resource = read_as(model, raw)
        except msgspec.ValidationError:
            tally.malformed += 1
            continue
        if not names_patient(resource.subject.reference if resource.subject else None, patient_id):
            tally.other_patient += 1
            continue
        yield resource
