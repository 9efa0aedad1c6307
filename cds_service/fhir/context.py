"""Condition and MedicationRequest JSON -> the small facts the leg-cramp rules read.

As for Observations, only the fields read here are validated; a malformed resource is skipped and
counted, and resources about another patient are ignored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..clinical.context import ConditionFact, MedicationFact
from ..content import ContextRules, dotless
from .references import names_patient


class _Lite(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Coding(_Lite):
    system: str | None = None
    code: str | None = None
    display: str | None = None


class CodeableConcept(_Lite):
    coding: list[_Coding] = Field(default_factory=list)
    text: str | None = None


class Reference(_Lite):
    reference: str | None = None
    display: str | None = None


class _Condition(_Lite):
    resourceType: str
    id: str | None = None
    subject: Reference | None = None
    code: CodeableConcept | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None


class _MedicationRequest(_Lite):
    resourceType: str
    id: str | None = None
    status: str
    subject: Reference | None = None
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None
    contained: list[dict[str, Any]] = Field(default_factory=list)


@dataclass(frozen=True)
class ContextRead:
    conditions: tuple[ConditionFact, ...]
    medications: tuple[MedicationFact, ...]
    malformed: int
    other_patient: int


def _codes(concept: CodeableConcept | None) -> set[str]:
    return {c.code for c in concept.coding if c.code} if concept else set()


def medication_fact(
    concept: CodeableConcept | None, reference: Reference | None, contained: list[dict[str, Any]], rxnorm: str
) -> MedicationFact:
    """The RxNorm codes and the names (lower case) of what a MedicationRequest orders."""
    concepts = [concept] if concept else []
    names: list[str] = []
    if reference is not None:
        if reference.display:
            names.append(reference.display)
        if reference.reference and reference.reference.startswith("#"):
            for resource in contained:
                if resource.get("resourceType") == "Medication" and f"#{resource.get('id')}" == reference.reference:
                    with contextlib.suppress(ValidationError):
                        concepts.append(CodeableConcept.model_validate(resource.get("code") or {}))
    codes: set[str] = set()
    for c in concepts:
        names += [text for text in (c.text, *(x.display for x in c.coding)) if text]
        codes |= {x.code for x in c.coding if x.system == rxnorm and x.code}
    return MedicationFact(frozenset(codes), tuple(n.lower() for n in names))


class ContextReader:
    def __init__(self, rules: ContextRules) -> None:
        self._systems = rules.systems
        self._active = frozenset(rules.active_statuses)
        self._refused = frozenset(rules.refused_verification)

    def conditions(self, resources: Iterable[Any], patient_id: str) -> ContextRead:
        facts: list[ConditionFact] = []
        malformed = other = 0
        for raw in resources:
            if not isinstance(raw, dict) or raw.get("resourceType") != "Condition":
                continue
            try:
                condition = _Condition.model_validate(raw)
            except ValidationError:
                malformed += 1
                continue
            if not names_patient(condition.subject.reference if condition.subject else None, patient_id):
                other += 1
                continue
            if (
                _codes(condition.verificationStatus) & self._refused
                or not _codes(condition.clinicalStatus) & self._active
            ):
                continue
            codes = frozenset(
                (c.system, dotless(c.code) if c.system == self._systems.icd10 else c.code)
                for c in (condition.code.coding if condition.code else [])
                if c.system and c.code
            )
            facts.append(ConditionFact(codes))
        return ContextRead(tuple(facts), (), malformed, other)

    def medications(self, resources: Iterable[Any], patient_id: str) -> ContextRead:
        facts: list[MedicationFact] = []
        malformed = other = 0
        for raw in resources:
            if not isinstance(raw, dict) or raw.get("resourceType") != "MedicationRequest":
                continue
            try:
                request = _MedicationRequest.model_validate(raw)
            except ValidationError:
                malformed += 1
                continue
            if not names_patient(request.subject.reference if request.subject else None, patient_id):
                other += 1
                continue
            if request.status != "active":
                continue
            facts.append(
                medication_fact(
                    request.medicationCodeableConcept,
                    request.medicationReference,
                    request.contained,
                    self._systems.rxnorm,
                )
            )
        return ContextRead((), tuple(facts), malformed, other)
