"""The leg-cramp context: cramps documented, other causes, CKD stage 4-5 or dialysis, pregnancy,
and the medicines that matter (those associated with cramps, those that move an electrolyte, and
vitamin D or calcium already taken, since when)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

from ..content.schema import ContextRules, Hit, MedicineRules
from ..content.terms import words


@dataclass(frozen=True)
class ConditionFact:
    codes: frozenset[tuple[str, str]]  # (system, code); ICD-10-CM codes without their dot
    undated_status: bool = False  # no clinicalStatus (an encounter diagnosis): counts only when recent
    recorded: datetime | None = None  # when, for one without clinicalStatus


@dataclass(frozen=True)
class MedicationFact:
    rxnorm: frozenset[str]
    names: str  # lower case, one a line: coding displays, text, reference display, dose form
    authored: datetime | None = None  # when it was prescribed or started (authoredOn)
    # each dosageInstruction's route: its codes, and the first word of its text and displays
    routes: tuple[frozenset[str], ...] = ()

    @cached_property
    def lines(self) -> tuple[tuple[str, ...], ...]:
        """The names as words, a line each (content/terms.py)."""
        return tuple(words(line) for line in self.names.split("\n"))


@dataclass(frozen=True)
class Product:
    """What a medicine holds of vitamin D and of calcium, named by the content's ingredients."""

    vitamin_d: tuple[str, ...] = ()
    calcium: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The combination as a whole: "calcium carbonate with cholecalciferol"."""
        return " with ".join(" and ".join(part) for part in (self.calcium, self.vitamin_d) if part)


@dataclass(frozen=True)
class CrampContext:
    cramps: bool = False
    cramp_codes: tuple[str, ...] = ()
    other_causes: tuple[str, ...] = ()
    ckd_advanced: bool = False
    pregnant: bool = False
    dihydroxy_indications: tuple[str, ...] = ()  # conditions where 1,25-D is the right test
    drugs: tuple[str, ...] = ()  # "furosemide (loop diuretic)"
    electrolyte_drugs: tuple[str, ...] = ()  # those of the groups that call for K and Mg: "furosemide"
    vitamin_d_products: tuple[str, ...] = ()
    supplements: tuple[str, ...] = ()  # each active product holding vitamin D or calcium, by name
    vitamin_d_supplements: tuple[str, ...] = ()  # those holding vitamin D
    vitamin_d_started: datetime | None = None  # the latest start of an active vitamin D product, if known
    # (analyte, direction) -> the active medicines known to move it so: "omeprazole (proton pump inhibitor)"
    causes: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)


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


Hits = Mapping[str, Sequence[Hit]]  # by list: what a medicine's codes and names hold


def _hits(medication: MedicationFact, rules: ContextRules) -> Hits:
    return rules.medicine_index.scan(medication.rxnorm, medication.names)


def topical(medication: MedicationFact, rules: ContextRules, hits: Hits | None = None) -> bool:
    """A topical form (rulebook, "Topical vitamin D analogues"): a topical analogue by name; a
    topical dose form with no systemic one beside it; or every route of its dosage topical (a route
    by its code, or by the first word of its text: "oral (not topical)" is oral)."""
    hits = _hits(medication, rules) if hits is None else hits
    if "topical" in hits or ("topical_form" in hits and "systemic_form" not in hits):
        return True
    topical_routes = rules.medicines.topical.route_set
    return bool(medication.routes) and all(not topical_routes.isdisjoint(route) for route in medication.routes)


def product(medication: MedicationFact, rules: ContextRules, hits: Hits | None = None) -> Product | None:
    """The vitamin D and calcium a medicine holds, alone or combined, coded, in text or by brand;
    None for a medicine that holds neither, or for a topical form."""
    hits = _hits(medication, rules) if hits is None else hits
    index, medicines = rules.medicine_index, rules.medicines
    vitamin_d = [d.ingredient for d in index.found(hits, "vitamin_d")]
    calcium = [d.ingredient for d in index.found(hits, "calcium")]
    combined = _combination(medication, hits, medicines)
    if combined is not None:
        vitamin_d = vitamin_d or [medicines.combination.ingredient]
        calcium = calcium or [combined]
    if not vitamin_d and not calcium:
        return None
    if topical(medication, rules, hits):
        return None
    # A generic name ("vitamin D", "calcium") only when nothing more specific is named beside it.
    generic = {medicines.combination.ingredient, *(d.ingredient for d in medicines.calcium_products if d.leading)}
    return Product(_specific(vitamin_d, generic), _specific(calcium, generic))


def _specific(found: list[str], generic: set[str]) -> tuple[str, ...]:
    named = tuple(dict.fromkeys(found))
    specific = tuple(name for name in named if name not in generic)
    return specific or named


def _combination(medication: MedicationFact, hits: Hits, rules: MedicineRules) -> str | None:
    """The calcium product of "<calcium product> [a few words] + D", if the names hold one."""
    spec = rules.combination
    for hit in hits.get("calcium", ()):
        if hit.line < 0:
            continue
        line = medication.lines[hit.line]
        for at in range(hit.end, min(len(line) - 1, hit.end + spec.gap + 1)):
            if line[at] in spec.connector_set and line[at + 1] in spec.vitamin_d_set:
                return rules.calcium_products[hit.item].ingredient
    return None


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


@dataclass(frozen=True)
class _Medicine:
    """What the context takes from one medicine: the same for the same codes, names and routes."""

    product: Product | None
    cramp: frozenset[str]  # ingredients of the drugs associated with cramps
    causes: Mapping[str, frozenset[str]]  # by cause list: the ingredients it names


def _medicine(medication: MedicationFact, rules: ContextRules) -> _Medicine:
    """The medicine's product and list entries, worked out once per medicine text."""
    index = rules.medicine_index

    def work_out() -> _Medicine:
        hits = _hits(medication, rules)
        medicines = rules.medicines
        groups = [medicines.cause_group(c.analyte, c.direction) for c in medicines.electrolyte_causes]
        return _Medicine(
            product(medication, rules, hits),
            frozenset(d.ingredient for d in index.found(hits, "cramp")),
            {group: frozenset(d.ingredient for d in index.found(hits, group)) for group in groups},
        )

    if not index.ordinary(medication.rxnorm, medication.names, medication.routes):  # the key is input
        return work_out()
    return index.memo((medication.rxnorm, medication.names, medication.routes), work_out)


def _causes(medicines_taken: Sequence[_Medicine], rules: ContextRules) -> dict[tuple[str, str], tuple[str, ...]]:
    """Per analyte and direction, the active medicines known to move it so, by name and group."""
    causes: dict[tuple[str, str], tuple[str, ...]] = {}
    medicines = rules.medicines
    held = [taken.product for taken in medicines_taken if taken.product is not None]
    for cause in medicines.electrolyte_causes:
        named: dict[str, None] = {}
        if cause.products:
            for product in held:
                if "vitamin_d" in cause.products and product.vitamin_d:
                    named[f"{product.name} (vitamin D)"] = None
                elif "calcium" in cause.products and product.calcium:
                    named[f"{product.name} (calcium)"] = None
        group = medicines.cause_group(cause.analyte, cause.direction)
        if found := {ingredient for taken in medicines_taken for ingredient in taken.causes[group]}:
            named.update(
                (f"{d.ingredient} ({d.group})" if d.group else d.ingredient, None)
                for d in cause.drugs
                if d.ingredient in found
            )
        if named:
            causes[cause.analyte, cause.direction] = tuple(named)
    return causes


def assess_context(
    conditions: Sequence[ConditionFact],
    medications: Sequence[MedicationFact],
    rules: ContextRules,
    as_of: datetime,
) -> CrampContext:
    cramp_codes, ckd_advanced, pregnancy, *rest = rules.condition_index.matches(
        *_codes(current(conditions, as_of, rules), rules)
    )
    indications, causes = rest[: len(rules.dihydroxy_indications)], rest[len(rules.dihydroxy_indications) :]
    other_causes = [cause.name for cause, found in zip(rules.other_causes, causes, strict=True) if found]
    read = [_medicine(m, rules) for m in medications]  # each medicine's names walked once for every list
    found = {ingredient for medicine in read for ingredient in medicine.cramp}
    taken = [drug for drug in rules.cramp_drugs if drug.ingredient in found] if found else []
    products = [medicine.product for medicine in read]
    on_vitamin_d = [(m, p) for m, p in zip(medications, products, strict=True) if p is not None and p.vitamin_d]
    started = [m.authored for m, _ in on_vitamin_d if m.authored is not None]
    return CrampContext(
        cramps=bool(cramp_codes),
        cramp_codes=tuple(sorted(cramp_codes)),
        other_causes=tuple(other_causes),
        ckd_advanced=bool(ckd_advanced),
        pregnant=bool(pregnancy),
        dihydroxy_indications=tuple(
            s.name for s, hit in zip(rules.dihydroxy_indications, indications, strict=True) if hit
        ),
        drugs=tuple(f"{drug.ingredient} ({drug.group})" if drug.group else drug.ingredient for drug in taken),
        electrolyte_drugs=tuple(d.ingredient for d in taken if d.group in rules.electrolyte_check_groups),
        vitamin_d_products=tuple(dict.fromkeys(i for _, p in on_vitamin_d for i in p.vitamin_d)),
        supplements=tuple(dict.fromkeys(p.name for p in products if p is not None)),
        vitamin_d_supplements=tuple(dict.fromkeys(p.name for _, p in on_vitamin_d)),
        vitamin_d_started=max(started) if started else None,
        causes=_causes(read, rules),
    )
