"""Safety properties over arbitrary records (hypothesis; docs/clinical-rules.md, "Unreadable
results", "vitd-supplement-caution", "calcium-supplement-caution", "Units and precision", "Card
text"). Each holds for every record the strategies can build, not only for the examples:

- an analyte whose newest result could not be read is never called "not checked";
- with the deciding calcium above range, every drafted product holding vitamin D or calcium, coded,
  in text or by brand, gets a caution that removes it;
- a shown value never sits on the other side of a cut-point from its classification;
- no card text holds markup from the input.
"""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from cds_service.content.loader import Content, load_content
from cds_service.fhir.client import FhirClient
from cds_service.protocol import HookRequest
from cds_service.rendering import CardRenderer
from cds_service.services.record import RecordReader
from cds_service.services.vitamin_d_cramps import VitaminDCramps
from cds_service.services.vitamin_d_orders import VitaminDOrders
from cds_service.settings import Settings
from tests.builders import RXNORM, bundle, condition, hook_request, medication, obs, order_request
from tests.conftest import AS_OF

CONTENT: Content = load_content()
SETTINGS = Settings(auth="off")
_RECORD = RecordReader(CONTENT, SETTINGS)
_CARDS = CardRenderer(CONTENT, _RECORD.profile_name)
PATIENT_VIEW = VitaminDCramps(_RECORD, _CARDS, frozenset())
ORDER_SIGN = VitaminDOrders(_RECORD, _CARDS, frozenset(), "order-sign")
FHIR = FhirClient(httpx.AsyncClient(), SETTINGS)  # every key prefetched: never used


def answer(service: Any, request: dict[str, Any]) -> list[dict[str, Any]]:
    outcome = asyncio.run(service.answer(HookRequest.model_validate(request), AS_OF, FHIR))
    return [card.model_dump(mode="json", exclude_none=True) for card in outcome.cards]


def kind(card: dict[str, Any]) -> str:
    return str(card["source"]["topic"]["code"])


# -- an unreadable newest result is never "not checked" ---------------------------------------------

ELECTROLYTE_CODES = {"potassium": "2823-3", "magnesium": "19123-9", "calcium": "17861-6"}
UNREADABLE = [
    {"valueString": "Blank"},
    {"valueQuantity": {"value": 0.7, "unit": "g/dL"}},
    {"valueQuantity": {"value": -1, "unit": "mmol/L"}},
    {"dataAbsentReason": {"coding": [{"code": "error"}]}},
    {},
]
_days = st.integers(0, 120)


@st.composite
def electrolyte_results(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[str]]:
    """Results of each electrolyte on distinct days up to 120 days old, and the analytes whose newest
    result within the 90-day window is unreadable (worked out here, apart from the service)."""
    resources: list[dict[str, Any]] = []
    unreadable: set[str] = set()
    for analyte, code in ELECTROLYTE_CODES.items():
        days = sorted(draw(st.sets(_days, max_size=3)))
        for i, day in enumerate(days):
            when = (AS_OF.date() - timedelta(days=day)).isoformat()
            readable = draw(st.booleans())
            fields = {} if readable else draw(st.sampled_from(UNREADABLE))
            value = draw(st.floats(1.0, 12.0)) if readable else None
            resources.append(
                obs(
                    code,
                    round(value, 1) if value else None,
                    "mmol/L" if analyte == "potassium" else "mg/dL",
                    when,
                    **fields,
                )
            )
            if i == 0 and not readable and day <= 90:
                unreadable.add(analyte)
    return resources, unreadable


@settings(max_examples=150, deadline=None)
@given(electrolyte_results(), st.booleans())
def test_an_analyte_whose_newest_result_is_unreadable_is_never_not_checked(
    record: tuple[list[dict[str, Any]], set[str]], cramps: bool
) -> None:
    resources, unreadable = record
    request = hook_request([obs("62292-8", 12, "ng/mL")], resources, conditions=[condition("R25.2")] if cramps else [])
    checks = [card for card in answer(PATIENT_VIEW, request) if kind(card) == "electrolytes-check"]
    if cramps and unreadable:  # with cramps every unreadable analyte is a gap: the card names it so
        (check,) = checks
        assert all(analyte in check["summary"].split("latest", 1)[-1] for analyte in unreadable), check["summary"]
    for card in checks:
        not_checked = card["summary"].split(" not checked")[0] if " not checked" in card["summary"] else ""
        no_result = re.findall(r"([\w ,]+) (?:has|have) no result in the last", card.get("detail", ""))
        for analyte in unreadable:
            assert analyte not in not_checked, (analyte, card["summary"])
            assert all(analyte not in said.lower() for said in no_result), (analyte, card["detail"])


# -- every product holding vitamin D or calcium is cautioned past a high calcium --------------------

MEDICINES = CONTENT.context.medicines
_vitamin_d_names = [n for d in MEDICINES.vitamin_d_products for n in [d.ingredient, *d.names]]
_calcium_names = [n for d in MEDICINES.calcium_products for n in [d.ingredient, *d.names] if not d.leading]
_doses = st.sampled_from(["", " 500 mg", " 1000 IU", " 50,000 units", " 0.25 mcg", " 600", " tab"])
_punctuation = st.sampled_from([" ", "  ", "-", "/", ", "])


def _cased(text: str, style: int) -> str:
    return [text, text.upper(), text.lower(), text.title()][style]


@st.composite
def product_texts(draw: st.DrawFn) -> str:
    """A vitamin D or calcium product as people write it: a name of the content, in any case, with a
    dose; a calcium product followed by "+ D"; or the combined names."""
    style = draw(st.integers(0, 3))
    shape = draw(st.integers(0, 3))
    if shape == 0:
        text = draw(st.sampled_from(_vitamin_d_names)) + draw(_doses)
    elif shape == 1:
        text = draw(st.sampled_from(_calcium_names)) + draw(_doses)
    elif shape == 2:
        connector = draw(st.sampled_from(MEDICINES.combination.connectors))
        d = draw(st.sampled_from(MEDICINES.combination.vitamin_d_words))
        text = f"{draw(st.sampled_from([*_calcium_names, 'Calcium']))}{draw(_doses)} {connector} {d}"
    else:
        calcium, vitamin_d = draw(st.sampled_from(_calcium_names)), draw(st.sampled_from(_vitamin_d_names))
        text = f"{calcium}{draw(_punctuation)}{vitamin_d}{draw(_doses)}"
    return _cased(text, style)


def _draft(text: str, i: int, coded: bool) -> dict[str, Any]:
    resource = medication("x", status="draft", id=f"mr-{i}")
    concept: dict[str, Any] = {"text": text}
    if coded:  # as Epic names it: the display on a coding, no text
        concept = {"coding": [{"system": RXNORM, "display": text}]}
    resource["medicationCodeableConcept"] = concept
    return resource


@settings(max_examples=200, deadline=None)
@given(
    st.lists(product_texts(), min_size=1, max_size=4),
    st.floats(10.3, 16.0),
    st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_every_product_with_vitamin_d_or_calcium_is_cautioned_past_a_high_calcium(
    texts: list[str], calcium: float, coded: list[bool]
) -> None:
    drafts = [_draft(text, i, coded[i]) for i, text in enumerate(texts)]
    electrolytes = [
        obs("2823-3", 4.2, "mmol/L", "2026-11-20"),
        obs("17861-6", round(calcium, 1), "mg/dL", "2026-11-20"),
    ]
    cards = answer(
        ORDER_SIGN, order_request(drafts, vitamin_d=[obs("62292-8", 40, "ng/mL")], electrolytes=electrolytes)
    )
    cautioned = {
        action["resourceId"]
        for card in cards
        if kind(card) in ("vitd-supplement-caution", "calcium-supplement-caution")
        for suggestion in card.get("suggestions", [])
        for action in suggestion["actions"]
    }
    assert cautioned == {f"MedicationRequest/mr-{i}" for i in range(len(texts))}, (texts, cards)


# -- a shown value keeps its side of every cut-point ----------------------------------------------

_PROFILE = _RECORD.profile
_CUTS = (_PROFILE.deficient_below, _PROFILE.insufficient_below, _PROFILE.high_above, _PROFILE.very_high_above)
_SHOWN = re.compile(r"\((\d+(?:\.\d+)?) ng/mL\)")
_BANDS = {
    "vitamin D deficient": lambda v: v < _PROFILE.deficient_below,
    f"vitamin D {_PROFILE.insufficient_label}": lambda v: _PROFILE.deficient_below <= v < _PROFILE.insufficient_below,
    ": very high": lambda v: v > _PROFILE.very_high_above,
    ": high": lambda v: _PROFILE.high_above < v <= _PROFILE.very_high_above,
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_CUTS), st.floats(-0.6, 0.6), st.sampled_from([1, 2, 3]))
def test_a_converted_value_is_never_shown_across_a_cut_point(cut: float, offset: float, places: int) -> None:
    nmol = round((cut + offset) * 2.496, places)
    request = hook_request([obs("62292-8", nmol, "nmol/L", "2026-11-20")], [obs("17861-6", 9.4, "mg/dL")])
    for card in answer(PATIENT_VIEW, request):
        if kind(card) not in ("vitd-deficient", "vitd-insufficient", "vitd-high"):
            continue
        shown = float(_SHOWN.search(card["summary"])[1])  # type: ignore[index]
        (band,) = [inside for said, inside in _BANDS.items() if said in card["summary"]]
        assert band(shown), (nmol, card["summary"])


# -- no markup from the input ----------------------------------------------------------------------

_MARKUP = st.sampled_from(
    [
        "<b>x</b>",
        "<img src=x onerror=alert(1)>",
        "[a](javascript:alert(1))",
        "![i](https://e.x/i.png)",
        "`c`",
        "**b**",
        "|t|",
        "<!--",
        "&lt;i&gt;",
        "\n# h",
    ]
)


@st.composite
def hostile(draw: st.DrawFn) -> str:
    return draw(st.text(max_size=6)) + draw(_MARKUP) + draw(st.text(max_size=6))


@settings(max_examples=150, deadline=None)
@given(hostile(), hostile(), hostile(), hostile())
def test_no_card_text_holds_markup_from_the_input(unit: str, value: str, medicine: str, code_text: str) -> None:
    """Markup put into every FHIR text the service reads (unit, value string, medicine and code
    texts, resource ids) never reaches a card as markup: raw in the summary only as plain text, and
    in the detail only escaped."""
    labs = [
        obs("62292-8", 12, None, "2026-11-20", valueQuantity={"value": 12, "unit": unit}),
        obs("62292-8", when="2026-11-19", valueString=value),
        obs("2823-3", 3.1, "mmol/L", "2026-11-20", id=code_text[:40] or "x"),
        obs("17861-6", 11.0, "mg/dL", "2026-11-20"),
    ]
    labs[3]["code"]["text"] = code_text
    meds = [medication(f"cholecalciferol {medicine}"), medication(medicine)]
    request = hook_request(labs[:2], labs[2:], medications=meds, conditions=[condition("R25.2")])
    request["prefetch"]["vitaminD"] = bundle(*labs[:2])
    for card in answer(PATIENT_VIEW, request):
        detail = card.get("detail", "")
        for raw in ("<b>", "<img", "](javascript", "![i]", "<!--", "&lt;i&gt;"):
            assert raw not in detail, (raw, detail)
        assert "<b>" not in card["summary"] and "<img" not in card["summary"] and "<!--" not in card["summary"]
