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
    names: str  # lower case, one a line: coding displays, text, reference display


@dataclass(frozen=True)
class CrampContext:
    cramps: bool = False
    cramp_codes: tuple[str, ...] = ()
    other_causes: tuple[str, ...] = ()
    ckd_advanced: bool = False
    drugs: tuple[str, ...] = ()  # "furosemide (loop or thiazide diuretic)"
    vitamin_d_products: tuple[str, ...] = ()


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


def _matches(codes: tuple[set[str], set[str]], wanted: ConditionSet) -> list[str]:
    """The codes that `wanted` lists, as written in the content."""
    icd10, snomed = codes
    found = [written for code in icd10 if (written := wanted.icd10_match(code)) is not None]
    return found + [code for code in snomed if wanted.snomed_match(code)]


def takes(medication: MedicationFact, drug: Drug) -> bool:
    """By RxNorm ingredient code, or the ingredient's name in the order's names."""
    return drug.rxnorm in medication.rxnorm or drug.lower_name in medication.names


def assess_context(
    conditions: Sequence[ConditionFact], medications: Sequence[MedicationFact], rules: ContextRules
) -> CrampContext:
    codes = _codes(conditions, rules)
    cramp_codes = sorted(_matches(codes, rules.cramps))
    other_causes = [cause.name for cause in rules.other_causes if _matches(codes, cause)]
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
        ckd_advanced=bool(_matches(codes, rules.ckd_advanced)),
        drugs=tuple(drugs),
        vitamin_d_products=tuple(products),
    )
