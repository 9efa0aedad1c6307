"""The leg-cramp context: cramps documented, other causes, CKD stage 4-5, pregnancy, and the
medicines that matter (those associated with cramps, and vitamin D already taken, since when)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ..content.schema import ContextRules


@dataclass(frozen=True)
class ConditionFact:
    codes: frozenset[tuple[str, str]]  # (system, code); ICD-10-CM codes without their dot
    undated_status: bool = False  # no clinicalStatus (an encounter diagnosis): counts only when recent
    recorded: datetime | None = None  # when, for one without clinicalStatus


@dataclass(frozen=True)
class MedicationFact:
    rxnorm: frozenset[str]
    names: str  # lower case, one a line: coding displays, text, reference display
    authored: datetime | None = None  # when it was prescribed or started (authoredOn)


@dataclass(frozen=True)
class CrampContext:
    cramps: bool = False
    cramp_codes: tuple[str, ...] = ()
    other_causes: tuple[str, ...] = ()
    ckd_advanced: bool = False
    pregnant: bool = False
    drugs: tuple[str, ...] = ()  # "furosemide (loop diuretic)"
    electrolyte_drugs: tuple[str, ...] = ()  # those of the groups that call for K and Mg: "furosemide"
    vitamin_d_products: tuple[str, ...] = ()
    vitamin_d_started: datetime | None = None  # the latest start of an active vitamin D product, if known


def _codes(conditions: Sequence[ConditionFact], rules: ContextRules) -> tuple[set[str], set[str]]:
    """The ICD-10-CM (dotless) and SNOMED CT codes of all the conditions."""
    icd10, snomed = set(), set()
    for fact in conditions:
        for system, code in fact.codes:
            if system == rules.systems.icd10:
                icd10.add(code)
            elif system == rules.systems.snomed:
                snomed.add(code)
    return icd10, snomed


def vitamin_d_product(medication: MedicationFact, rules: ContextRules) -> str | None:
    """The first vitamin D product of the list that a medicine holds, alone or combined."""
    found = rules.vitamin_d_index.find(medication.rxnorm, medication.names)
    return found[0].ingredient if found else None


def current(conditions: Sequence[ConditionFact], as_of: datetime, rules: ContextRules) -> list[ConditionFact]:
    """The conditions documented now: active ones, and those recorded without a clinicalStatus (as
    Epic records encounter diagnoses: a symptom noted at today's visit) within the window."""
    today = as_of.astimezone(UTC).date()  # calendar days in UTC, as every window counts them
    first = today - timedelta(days=rules.encounter_diagnosis_days)
    return [
        c
        for c in conditions
        if not c.undated_status or (c.recorded is not None and first <= c.recorded.astimezone(UTC).date() <= today)
    ]


def assess_context(
    conditions: Sequence[ConditionFact],
    medications: Sequence[MedicationFact],
    rules: ContextRules,
    as_of: datetime,
) -> CrampContext:
    cramp_codes, ckd_advanced, pregnancy, *causes = rules.condition_index.matches(
        *_codes(current(conditions, as_of, rules), rules)
    )
    other_causes = [cause.name for cause, found in zip(rules.other_causes, causes, strict=True) if found]
    index = rules.cramp_drug_index
    found = {d.ingredient for m in medications for d in index.find(m.rxnorm, m.names)}
    taken = [drug for drug in rules.cramp_drugs if drug.ingredient in found]
    on_vitamin_d = [(m, product) for m in medications if (product := vitamin_d_product(m, rules)) is not None]
    products = list(dict.fromkeys(product for _, product in on_vitamin_d))
    started = [m.authored for m, _ in on_vitamin_d if m.authored is not None]
    return CrampContext(
        cramps=bool(cramp_codes),
        cramp_codes=tuple(sorted(cramp_codes)),
        other_causes=tuple(other_causes),
        ckd_advanced=bool(ckd_advanced),
        pregnant=bool(pregnancy),
        drugs=tuple(f"{drug.ingredient} ({drug.group})" if drug.group else drug.ingredient for drug in taken),
        electrolyte_drugs=tuple(d.ingredient for d in taken if d.group in rules.electrolyte_check_groups),
        vitamin_d_products=tuple(products),
        vitamin_d_started=max(started) if started else None,
    )
