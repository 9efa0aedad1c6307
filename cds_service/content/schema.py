"""The shape of each file under `cards/`: pydantic models that refuse what they do not know, so that
a mistyped key stops the service at start with the file named, never a chart later."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Literal, NamedTuple, Self, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from .terms import TermIndex, words

Indicator = Literal["info", "warning", "critical"]
Positive = Annotated[float, Field(gt=0)]
Words = Annotated[str, Field(min_length=1)]

# The card kinds the code knows how to decide; the catalogue must word every one of them.
CARD_KINDS = (
    "vitd-deficient",
    "vitd-insufficient",
    "vitd-high",
    "vitd-wrong-test",
    "electrolytes-check",
    "electrolytes-abnormal",
    "vitd-duplicate-order",
    "vitd-order-1-25",
    "vitd-supplement-caution",
    "calcium-supplement-caution",
    "vitd-duplicate-therapy",
)
# The wording an order card's own suggestion needs, and the test the 1,25 card orders instead.
SUGGESTION_WORDING = {
    "vitd-duplicate-order": ("suggestion_label", "delete_description"),
    "vitd-order-1-25": ("suggestion_label", "delete_label", "delete_description", "create_description", "replacement"),
    "vitd-supplement-caution": ("suggestion_label", "delete_description"),
    "calcium-supplement-caution": ("suggestion_label", "delete_description"),
    "vitd-duplicate-therapy": ("suggestion_label", "delete_description"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- analytes.yaml ------------------------------------------------------------------------------


class UnitSpec(_Strict):
    canonical: str
    charge: int | None = None
    plausible: tuple[Annotated[float, Field(ge=0)], Positive] | None = None  # canonical unit
    decimals: Annotated[int, Field(ge=0, le=4)]  # a converted value is rounded to these
    units: dict[str, Positive]

    @model_validator(mode="after")
    def _consistent(self) -> UnitSpec:
        if self.plausible is not None and not self.plausible[0] < self.plausible[1]:
            raise ValueError("plausible must be [lowest, highest] with lowest < highest")
        if self.units.get(self.canonical) != 1:
            raise ValueError(f"the canonical unit {self.canonical!r} must be listed with 1")
        if "meq/L" in self.units:
            raise ValueError("meq/L is derived from mmol/L and `charge`; do not list it")
        if self.charge is not None and "mmol/L" not in self.units:
            raise ValueError("`charge` needs mmol/L in `units` to derive meq/L from")
        return self

    def factors(self) -> dict[str, float]:
        """UCUM code -> how many of that unit make one canonical unit, meq/L included."""
        factors = dict(self.units)
        if self.charge is not None:
            factors["meq/L"] = self.units["mmol/L"] * abs(self.charge)
        return factors


class RangeSpec(_Strict):
    low: Positive
    high: Positive
    critical_low: Positive | None = None
    critical_high: Positive | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        bounds = [b for b in (self.critical_low, self.low, self.high, self.critical_high) if b is not None]
        if bounds != sorted(set(bounds)):
            raise ValueError("need critical_low < low < high < critical_high")
        return self


Role = Literal["total", "proxy", "opt_in", "wrong_test", "measured", "corrected"]
# Why the check card suggests an analyte without a recent readable result (rulebook, "Which
# electrolytes to check"): leg cramps documented, 25(OH)D deficient, a loop or thiazide diuretic taken.
CheckReason = Literal["cramps", "deficient", "diuretic"]


class MeasureName(_Strict):
    name: str
    abbreviation: str


class Analyte(_Strict):
    """One analyte, everything said about it in one place (analytes.yaml)."""

    name: str
    abbreviation: str | None = None
    codes: dict[Role, dict[str, str]] = Field(min_length=1)  # role -> LOINC code -> short name
    unit: UnitSpec
    range: RangeSpec | None = None  # judged against it (electrolytes-abnormal)
    decides_for: str | None = None  # stands for that analyte on the day both are measured
    corrected: MeasureName | None = None  # the name of its corrected values
    check: list[CheckReason] = []  # when the check card suggests it

    @model_validator(mode="after")
    def _complete(self) -> Analyte:
        if self.range is not None and self.abbreviation is None:
            raise ValueError("an analyte with a range needs an abbreviation (cards name it so)")
        if (self.check or self.decides_for) and self.range is None:
            raise ValueError("an analyte that is checked, or decides for another, needs a range")
        if self.decides_for and self.check:
            raise ValueError("an analyte that decides for another is checked as that one: no `check` of its own")
        if "corrected" in self.codes and self.corrected is None:
            raise ValueError("`corrected` codes need a `corrected` name and abbreviation")
        if self.range is not None:
            for bound in (self.range.low, self.range.high):
                if self.unit.plausible is not None and not self.unit.plausible[0] < bound < self.unit.plausible[1]:
                    raise ValueError(f"range bound {bound:g} is outside the plausible values")
        return self


class VitaminDTests(_Strict):
    tests: list[str] = Field(min_length=1)  # the analytes of the vitaminD prefetch query
    component_d2: list[str]
    component_d3: list[str]
    component_total_name: str


class FlagSpec(_Strict):
    display: str
    direction: Literal["low", "high", "abnormal"] | None = None  # None: shown only
    critical: bool = False

    @model_validator(mode="after")
    def _directed(self) -> FlagSpec:
        if self.critical and self.direction is None:
            raise ValueError("a critical flag needs a direction")
        return self


class Interpretation(_Strict):
    systems: list[str] = Field(min_length=1)
    flags: dict[str, FlagSpec] = Field(min_length=1)


class Orderable(_Strict):
    code: str
    display: str
    covers: list[str] = Field(min_length=1)  # the analytes the test measures


class CodeRole(NamedTuple):
    """What a LOINC code of the content stands for."""

    analyte: str  # its analytes.yaml entry
    role: str  # total, proxy, opt_in, wrong_test, measured, corrected
    name: str  # the short name cards show


class AnalyteTable(_Strict):
    """analytes.yaml: the one list of analytes; every other part of the service asks it."""

    system: str
    usable_statuses: list[str]
    interpretation: Interpretation
    analytes: dict[str, Analyte] = Field(min_length=1)
    vitamin_d: VitaminDTests
    orderables: dict[str, Orderable]

    @model_validator(mode="after")
    def _consistent(self) -> AnalyteTable:
        self.roles()  # each code once
        known = set(self.analytes)
        for key, analyte in self.analytes.items():
            target = self.analytes.get(analyte.decides_for) if analyte.decides_for else None
            if analyte.decides_for and (target is None or target.range is None or target.decides_for):
                raise ValueError(f"{key} decides for {analyte.decides_for!r}, which is no judged analyte")
        if unknown := sorted(set(self.vitamin_d.tests) - known):
            raise ValueError(f"vitamin_d.tests names unknown analyte {', '.join(unknown)}")
        for name, test in self.orderables.items():
            if unknown := sorted(set(test.covers) - known):
                raise ValueError(f"orderables.{name} covers unknown analyte {', '.join(unknown)}")
        return self

    def roles(self) -> dict[str, CodeRole]:
        """LOINC code -> (analyte, role, short name)."""
        index: dict[str, CodeRole] = {}
        for key, analyte in self.analytes.items():
            for role, codes in analyte.codes.items():
                for code, name in codes.items():
                    if code in index:
                        raise ValueError(f"code {code} is listed twice")
                    index[code] = CodeRole(key, role, name)
        return index

    def codes(self, analyte: str, *roles: str) -> list[str]:
        """The analyte's codes of those roles (of every role when none is named)."""
        codes = self.analytes[analyte].codes
        return [code for role, by_code in codes.items() if not roles or role in roles for code in by_code]

    @cached_property
    def judged(self) -> tuple[str, ...]:
        """The analytes judged against a range, each standing for itself, in the table's order: the
        electrolytes of the cards."""
        return tuple(k for k, a in self.analytes.items() if a.range is not None and a.decides_for is None)

    def deciding_for(self, analyte: str) -> tuple[str, ...]:
        """The analytes whose results stand for `analyte` on their day, in the table's order."""
        return tuple(k for k, a in self.analytes.items() if a.decides_for == analyte)

    def checked(self, reason: str) -> tuple[str, ...]:
        """The analytes the check card suggests for that reason, in the table's order."""
        return tuple(k for k in self.judged if reason in self.analytes[k].check)

    @cached_property
    def ranges(self) -> Mapping[str, RangeSpec]:
        return MappingProxyType({k: a.range for k, a in self.analytes.items() if a.range is not None})

    @cached_property
    def units(self) -> Mapping[str, UnitSpec]:
        return MappingProxyType({k: a.unit for k, a in self.analytes.items()})

    @cached_property
    def measures(self) -> Mapping[str, MeasureName]:
        """What cards call each measure: an analyte, or an analyte's corrected values."""
        names: dict[str, MeasureName] = {}
        for key, analyte in self.analytes.items():
            names[key] = MeasureName(name=analyte.name, abbreviation=analyte.abbreviation or analyte.name)
            if analyte.corrected is not None:
                names[corrected_measure(key)] = analyte.corrected
        return MappingProxyType(names)


def corrected_measure(analyte: str) -> str:
    """The measure of an analyte's values corrected for albumin: calcium -> calcium_corrected."""
    return f"{analyte}_corrected"


# --- thresholds.yaml ----------------------------------------------------------------------------


class SourceSpec(_Strict):
    label: str
    citation: str
    # Written into card Markdown as an autolink, unescaped: https, and nothing that could end it.
    url: Annotated[str, StringConstraints(pattern=r"^https://[^\s<>]+$")] | None = None


class Profile(_Strict):
    label: str
    source: str | SourceSpec  # a key of catalogue.yaml's sources, or the source itself
    deficient_below: Positive
    insufficient_below: Positive
    high_above: Positive
    very_high_above: Positive
    insufficient_label: str
    high_note: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Profile:
        cuts = [self.deficient_below, self.insufficient_below, self.high_above, self.very_high_above]
        if cuts != sorted(cuts) or len(set(cuts)) != len(cuts):
            raise ValueError("cut-points must increase: deficient < insufficient < high < very high")
        return self


class Payne(_Strict):
    corrects: str  # the analyte whose measured total is corrected
    albumin: str  # the analyte it is corrected by
    factor: Positive
    reference_albumin: Positive
    reliable_albumin: Positive  # below it, a low measured total stays low

    @model_validator(mode="after")
    def _ordered(self) -> Payne:
        if not self.reliable_albumin < self.reference_albumin:
            raise ValueError("reliable_albumin must be below reference_albumin")
        return self


class Windows(_Strict):
    vitamin_d_status_days: Annotated[int, Field(gt=0)]
    electrolyte_recent_days: Annotated[int, Field(gt=0)]
    repeat_test_days: Annotated[int, Field(gt=0)]
    future_allowance_hours: Annotated[int, Field(ge=0)]


class Thresholds(_Strict):
    vitamin_d_profiles: dict[str, Profile] = Field(min_length=1)
    payne: Payne
    windows: Windows
    adult_age_years: Annotated[int, Field(gt=0)]


# --- context.yaml -------------------------------------------------------------------------------


class ContextSystems(_Strict):
    icd10: str
    snomed: str
    rxnorm: str


def dotless(code: str) -> str:
    """ICD-10-CM codes are compared without their dot: R25.2 and R252 are one code."""
    return code.replace(".", "").upper()


class ConditionSet(_Strict):
    name: str
    icd10: list[str] = []
    icd10_prefixes: list[str] = []
    snomed: list[str] = []


class ConditionIndex:
    """Which condition sets a record's codes fall in: each code looked up once, not once per set."""

    def __init__(self, sets: Sequence[ConditionSet]) -> None:
        self._count = len(sets)
        self._exact: dict[str, list[tuple[int, str]]] = {}  # dotless code -> (set, code as written)
        self._prefixes: dict[str, list[int]] = {}
        self._snomed: dict[str, list[int]] = {}
        for i, conditions in enumerate(sets):  # each code once per set, should the content repeat one
            for dotless_code, code in {dotless(c): c for c in conditions.icd10}.items():
                self._exact.setdefault(dotless_code, []).append((i, code))
            for prefix in {dotless(p) for p in conditions.icd10_prefixes}:
                self._prefixes.setdefault(prefix, []).append(i)
            for code in set(conditions.snomed):
                self._snomed.setdefault(code, []).append(i)
        self._lengths = sorted({len(p) for p in self._prefixes})

    def matches(self, icd10: Iterable[str], snomed: Iterable[str]) -> list[list[str]]:
        """For each set, in order, the codes it lists: ICD-10-CM (dotless) as the content writes
        them, or as the record has them when a prefix covers them; SNOMED CT as they are."""
        found: list[list[str]] = [[] for _ in range(self._count)]
        for code in icd10:
            exact = self._exact.get(code, ())
            for i, written in exact:
                found[i].append(written)
            listed = {i for i, _ in exact}
            for length in self._lengths:
                for i in self._prefixes.get(code[:length], ()):
                    if i not in listed:
                        listed.add(i)
                        found[i].append(code)
        for code in snomed:
            for i in self._snomed.get(code, ()):
                found[i].append(code)
        return found


class Drug(_Strict):
    group: str = ""
    ingredient: Annotated[str, Field(min_length=3)]
    rxnorm: str | None = None
    names: list[Annotated[str, Field(min_length=2)]] = []  # other names, matched like the ingredient's
    # Matched by name only as the first words of a medicine's name: "Calcium 600 mg" is calcium,
    # "atorvastatin calcium" is not.
    leading: bool = False

    @model_validator(mode="after")
    def _wordy(self) -> Drug:
        if empty := [n for n in (self.ingredient, *self.names) if not words(n)]:
            raise ValueError(f"a name without a letter or digit cannot be matched: {empty!r}")
        return self


T = TypeVar("T")
_MEMO_ENTRIES = 4096
_CACHED_NAMES = 512  # characters of a medicine's names (and of its codes) that an answer is kept for
_CACHED_CODES = 8  # RxNorm codes of a medicine that an answer is kept for


class Hit(NamedTuple):
    """A name (or code) of one of the content's lists found in a medicine."""

    group: str  # the list: cramp, vitamin_d, calcium, topical, or cause:<analyte>:<direction>
    item: int  # its entry in the list
    line: int  # which line of the medicine's names (-1: by RxNorm code)
    start: int  # the first word matched
    end: int  # one past the last


class MedicineIndex:
    """Every list of medicine names in one tree of words (content/terms.py), so that a medicine's
    names are walked once for all the lists; RxNorm ingredient codes in a dictionary. Within a list
    the longest name at each word wins, lists apart: "calcitriol ointment" is topical and still holds
    the vitamin D product calcitriol."""

    def __init__(self, lists: Mapping[str, Sequence[Drug]], terms: Mapping[str, Sequence[str]]) -> None:
        self.lists = lists
        self._codes: dict[str, list[tuple[str, int]]] = {}
        names: list[tuple[str, tuple[str, int]]] = []
        for group, drugs in lists.items():
            for i, drug in enumerate(drugs):
                if drug.rxnorm:
                    self._codes.setdefault(drug.rxnorm, []).append((group, i))
                names += [(name, (group, i)) for name in (drug.ingredient, *drug.names)]
        for group, terms_of_group in terms.items():
            names += [(term, (group, i)) for i, term in enumerate(terms_of_group)]
        self.tree: TermIndex[tuple[str, int]] = TermIndex(names)
        self._cached = lru_cache(maxsize=4096)(self._scan)
        self._memo: dict[Hashable, Any] = {}

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """What the clinical core works out from one medicine's codes and names, kept beside their
        hits: a chart's medicines recur from call to call. Bounded: emptied when 4,096 are held;
        callers keep keys of ordinary length (as `scan` does)."""
        if (held := self._memo.get(key)) is None:
            if len(self._memo) >= _MEMO_ENTRIES:
                self._memo.clear()
            held = self._memo[key] = compute()
        return cast(T, held)

    def scan(self, rxnorm: frozenset[str], names: str) -> Mapping[str, tuple[Hit, ...]]:
        """The hits in a medicine's codes and names (one a line), by list. A chart's medicines recur
        from call to call, so the answers for names and codes of ordinary length are kept (a cache
        bounded in entries and in the size of each key)."""
        if not self.ordinary(rxnorm, names):
            return self._scan(rxnorm, names)
        return self._cached(rxnorm, names)

    @staticmethod
    def ordinary(rxnorm: frozenset[str], names: str, routes: tuple[frozenset[str], ...] = ()) -> bool:
        """Codes, names and routes of a size an answer is kept for: a key never larger than a
        medicine's usual (a route as many times as there are dosage instructions would be)."""
        return (
            len(names) <= _CACHED_NAMES
            and len(rxnorm) <= _CACHED_CODES
            and sum(map(len, rxnorm)) <= _CACHED_NAMES
            and len(routes) <= _CACHED_CODES
            and sum(len(part) for route in routes for part in route) <= _CACHED_NAMES
        )

    def _scan(self, rxnorm: frozenset[str], names: str) -> Mapping[str, tuple[Hit, ...]]:
        hits: dict[str, list[Hit]] = {}
        for code in rxnorm:
            for group, item in self._codes.get(code, ()):
                hits.setdefault(group, []).append(Hit(group, item, -1, 0, 0))
        for n, line in enumerate(names.split("\n")):
            longest: dict[tuple[str, int], Hit] = {}
            for start, end, (group, item) in self.tree.find_all(words(line)):
                held = longest.get((group, start))
                if held is None or end > held.end:  # the first entry under a name keeps it
                    longest[group, start] = Hit(group, item, n, start, end)
            for hit in longest.values():
                hits.setdefault(hit.group, []).append(hit)
        return MappingProxyType({group: tuple(found) for group, found in hits.items()})

    def found(self, hits: Mapping[str, Sequence[Hit]], group: str) -> list[Drug]:
        """The entries of a list the hits found, in the list's order; a `leading` entry only as the
        first words of a line."""
        if group not in hits:
            return []
        drugs = self.lists[group]
        items = {h.item for h in hits[group] if h.start == 0 or not drugs[h.item].leading}
        return [drugs[i] for i in sorted(items)]


# --- medicines.yaml -----------------------------------------------------------------------------


class Combination(_Strict):
    """A calcium product followed, within `gap` words, by a connector and a bare "D": "Os-Cal 500
    + D", "Calcium 600 with D3"."""

    gap: Annotated[int, Field(ge=0, le=5)]
    connectors: list[str] = Field(min_length=1)
    vitamin_d_words: list[str] = Field(min_length=1)
    ingredient: str  # the vitamin D product such a combination names

    @cached_property
    def connector_set(self) -> frozenset[str]:
        return frozenset(w for c in self.connectors for w in words(c))

    @cached_property
    def vitamin_d_set(self) -> frozenset[str]:
        return frozenset(w for v in self.vitamin_d_words for w in words(v))


class Topical(_Strict):
    """Topical vitamin D analogues: neither treatment begun nor a supplement to caution."""

    names: list[str] = Field(min_length=1)
    route_codes: list[str] = []  # SNOMED CT codes of dosageInstruction.route
    route_words: list[str] = []  # the first word of a route's text or display
    dose_forms: list[str] = []  # words of the medicine's name or form
    systemic_forms: list[str] = []  # words that make a name with a topical word a systemic medicine

    @cached_property
    def route_set(self) -> frozenset[str]:
        return frozenset(w for r in self.route_words for w in words(r)) | frozenset(self.route_codes)


class CauseList(_Strict):
    """The medicines an abnormal electrolyte card names for one analyte and direction."""

    analyte: str  # a judged analyte of analytes.yaml
    direction: Literal["low", "high"]
    sources: list[str] = Field(min_length=1)  # keys of catalogue.yaml's sources
    products: list[Literal["vitamin_d", "calcium"]] = []  # the product lists of this file
    drugs: list[Drug] = []


class MedicineRules(_Strict):
    vitamin_d_products: list[Drug] = Field(min_length=1)
    calcium_products: list[Drug] = Field(min_length=1)
    combination: Combination
    topical: Topical
    electrolyte_causes: list[CauseList]

    def cause_group(self, analyte: str, direction: str) -> str:
        return f"cause:{analyte}:{direction}"

    @model_validator(mode="after")
    def _one_list_each(self) -> MedicineRules:
        keys = [(c.analyte, c.direction) for c in self.electrolyte_causes]
        if len(set(keys)) != len(keys):
            raise ValueError("electrolyte_causes lists an analyte and direction twice")
        return self


class ContextRules(_Strict):
    systems: ContextSystems
    active_statuses: list[str] = Field(min_length=1)
    refused_verification: list[str]
    encounter_diagnosis_days: Annotated[int, Field(gt=0)]
    cramps: ConditionSet
    other_causes: list[ConditionSet]
    ckd_advanced: ConditionSet
    pregnancy: ConditionSet
    dihydroxy_indications: list[ConditionSet]  # where 1,25-dihydroxyvitamin D is the right test
    cramp_drugs: list[Drug]
    electrolyte_check_groups: list[str]
    medicines: MedicineRules  # medicines.yaml

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with its indexes built afresh: pydantic copies the original's cached ones."""
        copy = super().model_copy(update=update, deep=deep)
        for name, attribute in vars(ContextRules).items():
            if isinstance(attribute, cached_property):
                copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def condition_index(self) -> ConditionIndex:
        """The sets in the order `assess_context` unpacks them."""
        return ConditionIndex(
            [self.cramps, self.ckd_advanced, self.pregnancy, *self.dihydroxy_indications, *self.other_causes]
        )

    @cached_property
    def medicine_index(self) -> MedicineIndex:
        medicines = self.medicines
        lists: dict[str, Sequence[Drug]] = {
            "cramp": self.cramp_drugs,
            "vitamin_d": medicines.vitamin_d_products,
            "calcium": medicines.calcium_products,
        }
        lists |= {medicines.cause_group(c.analyte, c.direction): c.drugs for c in medicines.electrolyte_causes}
        topical = medicines.topical
        terms = {"topical": topical.names, "topical_form": topical.dose_forms, "systemic_form": topical.systemic_forms}
        return MedicineIndex(lists, terms)

    @model_validator(mode="after")
    def _known_groups(self) -> ContextRules:
        groups = {d.group for d in self.cramp_drugs}
        if unknown := [g for g in self.electrolyte_check_groups if g not in groups]:
            raise ValueError(f"electrolyte_check_groups names no drug group {', '.join(unknown)}")
        return self


# --- catalogue.yaml -----------------------------------------------------------------------------


class Systems(_Strict):
    card_kind: str
    override_reason: str


class ResultNotes(_Strict):
    """The Note column's wording of a data table row (catalogue.yaml, `result_notes`)."""

    flag: Annotated[str, Field(pattern=r"^[^{}]*\{flag\}[^{}]*$")]  # the flag as {flag}, no other field
    unit_unreported: Words
    proxy: Words
    status_unknown: Words
    old: Words


class OverrideReason(_Strict):
    code: str
    display: str
    snooze_days: Annotated[int, Field(ge=0, le=3650)]  # the card kind is not shown again so long (0: never)
    kinds: list[str] = Field(min_length=1)  # the card kinds that offer it, in the catalogue's order


class SuggestionSpec(_Strict):
    orderable: str
    label: str
    description: str


class CardSpec(_Strict):
    mode: Literal["active", "silent"]  # silent: decided and recorded, never shown
    snooze: bool  # an override may snooze it (never a card of an abnormal value, nor an order caution)
    indicator: Indicator
    indicator_critical: Indicator | None = None
    indicator_hypercalcaemia: Indicator | None = None
    summary: str
    detail: str
    source: str
    links: list[str] = []
    trend_link: bool = False  # links to the SMART app's trend, where the app is set up
    suggestions: list[SuggestionSpec] = []
    # the suggestion an order card builds around a draft order: its label and action wording
    suggestion_label: str | None = None
    delete_label: str | None = None  # a suggestion that only removes the draft, where one also creates
    delete_description: str | None = None
    create_description: str | None = None
    replacement: str | None = None  # an orderable test drafted in place of the draft the card is about


class Catalogue(_Strict):
    version: str
    systems: Systems
    override_reasons: list[OverrideReason] = Field(min_length=1)
    result_notes: ResultNotes
    sources: dict[str, SourceSpec]
    trend_link_label: str = Field(min_length=1)
    cards: dict[str, CardSpec]

    def reasons(self, kind: str) -> list[OverrideReason]:
        """The override reasons a card kind offers, in the catalogue's order."""
        return [r for r in self.override_reasons if kind in r.kinds]
