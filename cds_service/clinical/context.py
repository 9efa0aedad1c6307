"""The leg-cramp context: cramps documented, other causes, CKD stage 4-5, and the medicines that
matter (those associated with cramps, and vitamin D already taken)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..content import ConditionSet, ContextRules, Drug


@dataclass(frozen=True)
class ConditionFact:
    codes: frozenset[tuple[str, str]]  # (system, code); ICD-10-CM codes without their dot


@dataclass(frozen=True)
class MedicationFact:
    rxnorm: frozenset[str]
    names: tuple[str, ...]  # lower case: coding displays, text, reference display


@dataclass(frozen=True)
class CrampContext:
    cramps: bool = False
    cramp_codes: tuple[str, ...] = ()
    other_causes: tuple[str, ...] = ()
    ckd_advanced: bool = False
    drugs: tuple[str, ...] = ()  # "furosemide (loop or thiazide diuretic)"
    vitamin_d_products: tuple[str, ...] = ()


def _matches(fact: ConditionFact, wanted: ConditionSet, rules: ContextRules) -> list[str]:
    """The codes of `fact` that `wanted` lists, as written in the content."""
    found = []
    for system, code in fact.codes:
        if system == rules.systems.icd10:
            if (written := wanted.icd10_match(code)) is not None:
                found.append(written)
        elif system == rules.systems.snomed and wanted.snomed_match(code):
            found.append(code)
    return found


def takes(medication: MedicationFact, drug: Drug) -> bool:
    """By RxNorm ingredient code, or the ingredient's name in the order's names."""
    if drug.rxnorm is not None and drug.rxnorm in medication.rxnorm:
        return True
    return drug.named_in(medication.names)


def assess_context(
    conditions: Sequence[ConditionFact], medications: Sequence[MedicationFact], rules: ContextRules
) -> CrampContext:
    cramp_codes = sorted({code for fact in conditions for code in _matches(fact, rules.cramps, rules)})
    other_causes = [cause.name for cause in rules.other_causes if any(_matches(f, cause, rules) for f in conditions)]
    drugs = [
        f"{drug.ingredient} ({drug.group})" if drug.group else drug.ingredient
        for drug in rules.cramp_drugs
        if any(takes(m, drug) for m in medications)
    ]
    products = [p.ingredient for p in rules.vitamin_d_products if any(takes(m, p) for m in medications)]
    return CrampContext(
        cramps=bool(cramp_codes),
        cramp_codes=tuple(cramp_codes),
        other_causes=tuple(other_causes),
        ckd_advanced=any(_matches(f, rules.ckd_advanced, rules) for f in conditions),
        drugs=tuple(drugs),
        vitamin_d_products=tuple(products),
    )
