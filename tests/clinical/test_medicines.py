"""Medicines in text (docs/clinical-rules.md, "Medicines in text", "Topical vitamin D analogues",
"Medicines named on abnormal cards"): what a medicine holds of vitamin D and calcium, coded, in
free text, by abbreviation or brand, alone or combined; what never matches; topical forms; and the
medicines an abnormal card names."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cds_service.clinical.cramp_context import CrampContext, assess_context, product
from cds_service.content.loader import Content
from cds_service.content.schema import _MEMO_ENTRIES
from cds_service.fhir.facts import ContextReader
from tests.builders import PATIENT, RXNORM, medication

AS_OF = datetime(2026, 11, 25, 12, tzinfo=UTC)


def med(text: str, **fields: Any) -> dict[str, Any]:
    resource = medication("x")
    resource["medicationCodeableConcept"] = {"text": text}
    return resource | fields


def held(content: Content, resource: dict[str, Any]) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    (fact,) = ContextReader(content.context).medications([resource], PATIENT).items
    found = product(fact, content.context)
    return None if found is None else (found.vitamin_d, found.calcium)


def context(content: Content, *resources: dict[str, Any]) -> CrampContext:
    facts = ContextReader(content.context).medications(list(resources), PATIENT).items
    return assess_context([], facts, content.context, AS_OF)


@pytest.mark.parametrize(
    ("text", "vitamin_d", "calcium"),
    [
        ("Vit D 50,000 units weekly", ("vitamin D",), ()),
        ("vit. D3 2000 IU daily", ("cholecalciferol",), ()),
        ("50,000 units once a week", ("vitamin D",), ()),
        ("50000 IU weekly", ("vitamin D",), ()),
        ("Os-Cal 500 + D", ("vitamin D",), ("calcium carbonate",)),
        ("Calcium 600 + D", ("vitamin D",), ("calcium",)),
        ("Caltrate 600+D3", ("cholecalciferol",), ("calcium carbonate",)),
        ("Citracal & D", ("vitamin D",), ("calcium citrate",)),
        ("calcium citrate 315 mg with D", ("vitamin D",), ("calcium citrate",)),
        ("D-Vi-Sol 400 units/mL drops", ("cholecalciferol",), ()),
        ("Replesta 50,000 IU wafer", ("cholecalciferol",), ()),
        ("Drisdol 50,000 unit capsule", ("ergocalciferol",), ()),
        ("Rocaltrol 0.25 mcg", ("calcitriol",), ()),
        ("Rayaldee ER 30 mcg", ("calcifediol",), ()),
        ("Hectorol 2.5 mcg", ("doxercalciferol",), ()),
        ("Zemplar 1 mcg", ("paricalcitol",), ()),
        ("One-Alpha 0.25 micrograms", ("alfacalcidol",), ()),
        ("Fosamax Plus D 70 mg/2800 units", ("cholecalciferol",), ()),
        (
            "Calcium Carbonate 600 MG / Cholecalciferol 400 UNT Oral Tablet",
            ("cholecalciferol",),
            ("calcium carbonate",),
        ),
        ("Calcium carbonate 500 mg", (), ("calcium carbonate",)),
        ("Tums 750 mg", (), ("calcium carbonate",)),
        ("calcium gluconate 10% injection", (), ("calcium gluconate",)),
        ("Calcium 600 mg tablet", (), ("calcium",)),
        ("Calcium 600 mg (calcium carbonate)", (), ("calcium carbonate",)),
    ],
)
def test_products_holding_vitamin_d_or_calcium(
    content: Content, text: str, vitamin_d: tuple[str, ...], calcium: tuple[str, ...]
) -> None:
    assert held(content, med(text)) == (vitamin_d, calcium)


@pytest.mark.parametrize(
    "text",
    [
        "lidocaine 5% patch",  # the "d" of lidocaine is no word of its own
        "atorvastatin calcium 40 mg",  # a salt of another drug, not a calcium product
        "leucovorin calcium 25 mg",
        "rosuvastatin calcium 10 MG Oral Tablet",
        "Vitamin B12 1000 MCG",
        "Vitamin D3D 1 tab",  # not a word
        "D-mannose 500 mg",
        "Kd3 powder",
        "heparin 5,000 units",
        "Plan D coverage",
        "",
    ],
)
def test_words_that_are_not_these_products(content: Content, text: str) -> None:
    assert held(content, med(text)) is None


def test_by_ingredient_code_alone(content: Content) -> None:
    coded = medication("x", "2418")
    coded["medicationCodeableConcept"]["text"] = "house brand"
    coded["medicationCodeableConcept"]["coding"][0]["display"] = "house brand"
    assert held(content, coded) == (("cholecalciferol",), ())


@pytest.mark.parametrize(
    "resource",
    [
        med("Vectical 3 mcg/g ointment"),
        med("calcitriol 3 MCG/GM Topical Ointment"),
        med("calcipotriene 0.005% cream"),
        med("Dovonex scalp solution"),
        med(
            "calcitriol 3 mcg/g",
            dosageInstruction=[{"route": {"coding": [{"system": "http://snomed.info/sct", "code": "6064005"}]}}],
        ),
        med("calcitriol 3 mcg/g", dosageInstruction=[{"route": {"text": "Cutaneous"}}]),
        med("calcitriol foam"),
    ],
    ids=["vectical", "ointment-form", "calcipotriene", "scalp-solution", "route-code", "route-text", "foam"],
)
def test_topical_analogues_are_not_vitamin_d_products(content: Content, resource: dict[str, Any]) -> None:
    """By name, dose form or route: neither treatment begun nor a supplement to caution."""
    assert held(content, resource) is None
    assert context(content, resource).vitamin_d_products == ()


def _route(text: str) -> dict[str, Any]:
    return {"route": {"text": text}}


@pytest.mark.parametrize(
    "resource",
    [
        med("cholecalciferol 1000 unit", dosageInstruction=[_route("oral (not topical)")]),
        med("calcitriol 0.25 mcg capsule", dosageInstruction=[_route("Oral"), _route("Topical")]),
        med("calcitriol 0.25 mcg tablet (not an ointment)"),
        med("Vitamin D3 softgel"),
    ],
    ids=["oral-route-text", "one-route-oral", "systemic-form-beside", "softgel"],
)
def test_an_oral_product_mentioning_a_topical_word_is_still_vitamin_d(
    content: Content, resource: dict[str, Any]
) -> None:
    """From an independent attack run: "topical" anywhere in a route or a form hid an oral product."""
    found = held(content, resource)
    assert found is not None and found[0]


def test_a_topical_form_read_from_the_referenced_medication(content: Content) -> None:
    request = medication("x")
    del request["medicationCodeableConcept"]
    request["medicationReference"] = {"reference": "Medication/m1", "display": "calcitriol 3 mcg/g"}
    form = {"resourceType": "Medication", "id": "m1", "form": {"text": "Ointment"}}
    facts = ContextReader(content.context).medications([request, form], PATIENT).items
    assert product(facts[0], content.context) is None


PPI, LOOP, THIAZIDE = "proton pump inhibitor", "loop diuretic", "thiazide diuretic"
NAMED = [
    (["omeprazole 20 mg", "furosemide 40 mg"], ("magnesium", "low"), (f"omeprazole ({PPI})", f"furosemide ({LOOP})")),
    (["Nexium 40 mg"], ("magnesium", "low"), (f"esomeprazole ({PPI})",)),
    (["hydrochlorothiazide 25 mg", "omeprazole 20 mg"], ("potassium", "low"), (f"hydrochlorothiazide ({THIAZIDE})",)),
    (
        ["calcitriol 0.25 mcg", "lithium 300 mg"],
        ("calcium", "high"),
        ("calcitriol (vitamin D)", "lithium (mood stabiliser)"),
    ),
    (["Os-Cal 500 + D"], ("calcium", "high"), ("calcium carbonate with vitamin D (vitamin D)",)),
    (["Tums 500 mg"], ("calcium", "high"), ("calcium carbonate (calcium)",)),
    (
        ["spironolactone 25 mg", "lisinopril 10 mg", "losartan 50 mg", "Klor-Con 20 mEq"],
        ("potassium", "high"),
        (
            "spironolactone (potassium-sparing diuretic)",
            "lisinopril (ACE inhibitor)",
            "losartan (angiotensin receptor blocker)",
            "potassium chloride (potassium supplement)",
        ),
    ),
    (["Vectical ointment"], ("calcium", "high"), None),
]


@pytest.mark.parametrize(("texts", "cause", "named"), NAMED)
def test_medicines_named_per_analyte_and_direction(
    content: Content, texts: list[str], cause: tuple[str, str], named: tuple[str, ...] | None
) -> None:
    assert context(content, *(med(t) for t in texts)).causes.get(cause) == named


def test_every_cause_list_cites_a_source_with_a_link(content: Content) -> None:
    for cause in content.context.medicines.electrolyte_causes:
        for source in cause.sources:
            assert content.catalogue.sources[source].url, (cause.analyte, cause.direction, source)


def test_rxnorm_codes_name_a_product_whatever_the_text(content: Content) -> None:
    coded = medication("x", "7646")  # omeprazole's ingredient code
    coded["medicationCodeableConcept"] = {"coding": [{"system": RXNORM, "code": "7646"}]}
    assert context(content, coded).causes[("magnesium", "low")] == ("omeprazole (proton pump inhibitor)",)


@pytest.mark.parametrize(
    ("text", "vitamin_d"),
    [
        ("ｖｉｔａｍｉｎ Ｄ３ 1000 unit", ("cholecalciferol",)),  # full-width
        ("vitamin D₃ 1000 unit", ("cholecalciferol",)),  # subscript
        ("cholecalciférol 1000 unit", ("cholecalciferol",)),  # an accent
        ("chole\u200bcalciferol 1000 unit", ("cholecalciferol",)),  # a zero-width space inside
    ],
)
def test_unicode_forms_of_a_name_are_the_name(content: Content, text: str, vitamin_d: tuple[str, ...]) -> None:
    found = held(content, med(text))
    assert found is not None and found[0] == vitamin_d


def test_a_medicine_is_read_as_far_as_a_name_goes(content: Content) -> None:
    """Hostile input: a 5 MB text is read to its first 1,000 characters, so that it cannot hold the
    service; a name there is found, one after it is not (rulebook, "Medicines in text")."""
    assert held(content, med("Vit D3 " + "x " * 2_500_000)) == (("cholecalciferol",), ())
    assert held(content, med("x " * 600 + "Vit D3")) is None


def test_only_ordinary_medicines_are_kept_in_the_cache(content: Content) -> None:
    """The answers for a medicine's names are cached; a key of hostile size never is."""
    index = content.context.medicine_index
    index._cached.cache_clear()
    index.scan(frozenset({"2418"}), "vitamin d3 1000 unit")
    index.scan(frozenset(str(i) for i in range(50)), "vitamin d3 1000 unit")
    index.scan(frozenset(), "x " * 400 + "vitamin d3")
    index.scan(frozenset({"9" * 600}), "vitamin d3")
    assert index._cached.cache_info().currsize == 1
    assert index.scan(frozenset(str(i) for i in range(50)), "Vitamin D3")["vitamin_d"]


def test_what_a_medicine_holds_is_kept_for_ordinary_medicines_and_bounded(content: Content) -> None:
    """The context works a medicine out once per codes, names and routes; a hostile key is never
    kept, and the memo never holds more than its bound."""
    index = content.context.medicine_index
    index._memo.clear()
    first = context(content, med("furosemide 40 mg"))
    assert first.drugs and len(index._memo) == 1
    assert context(content, med("furosemide 40 mg")) == first and len(index._memo) == 1
    context(content, med("furosemide " + "x " * 400))
    routes = [{"route": {"coding": [{"code": f"route-{i}-" + "r" * 50}]}} for i in range(20)]
    context(content, med("furosemide 20 mg", dosageInstruction=routes))
    # routes without a word, as many as a body holds: a key of no length in characters, still large
    context(content, med("furosemide 10 mg", dosageInstruction=[{"route": {}}] * 10_000))
    assert len(index._memo) == 1
    for i in range(_MEMO_ENTRIES + 10):
        index.memo(("filler", i), lambda: None)
    assert len(index._memo) <= _MEMO_ENTRIES
    assert context(content, med("furosemide 40 mg")) == first  # worked out again, the same
