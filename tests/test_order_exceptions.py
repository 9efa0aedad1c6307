"""The ordering hooks past a high calcium and around 1,25-dihydroxyvitamin D (docs/clinical-rules.md,
"vitd-order-1-25", "vitd-supplement-caution", "calcium-supplement-caution"): when 1,25-D is the right
test, when a 25(OH)D is drafted in its place, and every product holding vitamin D or calcium drafted
into a hypercalcaemia, however it is written."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import (
    LOINC,
    SNOMED,
    condition,
    interpretation,
    medication,
    normal_electrolytes,
    obs,
    order_request,
    pending_order,
    service_request,
)

pytestmark = pytest.mark.anyio
SIGN = "/cds-services/vitamin-d-order-sign"
SELECT = "/cds-services/vitamin-d-order-select"
VITD_1_25 = service_request((LOINC, "1649-3"), id="sr-125")
VITD_25 = service_request((LOINC, "62292-8"), id="sr-25")
CALCIUM_11_6 = [obs("2823-3", 4.2, "mmol/L", "2026-11-20"), obs("17861-6", 11.6, "mg/dL", "2026-11-20")]


async def cards(client: httpx.AsyncClient, request: dict[str, Any], url: str = SIGN) -> list[dict[str, Any]]:
    response = await client.post(url, json=request)
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [c["source"]["topic"]["code"] for c in found]


# --- vitd-order-1-25 ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "indication",
    [
        condition("N18.4"),
        condition("N18.6"),
        condition("Z99.2"),  # dependence on renal dialysis
        condition("Z49.01"),  # encounter for dialysis catheter fitting
        condition("431857002", SNOMED),  # CKD stage 4
        condition("46177005", SNOMED),  # end-stage renal disease
        condition("714152005", SNOMED),  # CKD stage 5 on dialysis
        condition("105502003", SNOMED),  # dependence on renal dialysis
        condition("D86.0"),  # sarcoidosis of lung
        condition("D86.9"),
        condition("31541009", SNOMED),  # sarcoidosis
        condition("E83.39"),  # hypophosphataemia
    ],
    ids=lambda c: c["code"]["coding"][0]["code"],
)
async def test_no_1_25_card_where_1_25_is_the_right_test(client: httpx.AsyncClient, indication: dict[str, Any]) -> None:
    request = order_request([VITD_1_25], vitamin_d=[], electrolytes=normal_electrolytes(), conditions=[indication])
    assert kinds(await cards(client, request)) == []


async def test_no_1_25_card_in_a_hypercalcaemia_work_up(client: httpx.AsyncClient) -> None:
    request = order_request([VITD_1_25], vitamin_d=[], electrolytes=CALCIUM_11_6, conditions=[])
    assert kinds(await cards(client, request)) == []


async def test_ckd_stage_3_still_gets_the_1_25_card(client: httpx.AsyncClient) -> None:
    request = order_request(
        [VITD_1_25], vitamin_d=[], electrolytes=normal_electrolytes(), conditions=[condition("N18.30")]
    )
    assert kinds(await cards(client, request)) == ["vitd-order-1-25"]


def actions(card: dict[str, Any]) -> list[tuple[str, str]]:
    (suggestion,) = card["suggestions"]
    return [
        (a["type"], a.get("resourceId") or a["resource"]["code"]["coding"][0]["code"]) for a in suggestion["actions"]
    ]


@pytest.mark.parametrize(
    ("vitamin_d", "drafts", "pending", "replaced"),
    [
        ([], [VITD_1_25], [], True),
        ([obs("62292-8", 24, "ng/mL", "2026-11-05")], [VITD_1_25], [], False),  # 20 days old
        ([obs("62292-8", 24, "ng/mL", "2026-08-01")], [VITD_1_25], [], True),  # older than 90 days
        ([], [VITD_1_25, VITD_25], [], False),  # a 25(OH)D drafted beside it
        ([], [VITD_1_25], [pending_order("62292-8")], False),  # one already ordered and pending
    ],
    ids=["none", "recent", "old", "drafted-beside", "pending"],
)
async def test_a_25ohd_is_drafted_in_place_only_when_none_is_recent_drafted_or_pending(
    client: httpx.AsyncClient, vitamin_d: list[Any], drafts: list[Any], pending: list[Any], replaced: bool
) -> None:
    request = order_request(
        drafts, vitamin_d=vitamin_d, electrolytes=normal_electrolytes(), conditions=[], pending_orders=pending
    )
    (card,) = [c for c in await cards(client, request) if c["source"]["topic"]["code"] == "vitd-order-1-25"]
    expected = [("delete", "ServiceRequest/sr-125")] + ([("create", "62292-8")] if replaced else [])
    assert actions(card) == expected
    assert card["suggestions"][0]["label"] == (
        "Order 25(OH)D instead" if replaced else "Remove the draft 1,25-dihydroxyvitamin D order"
    )


async def test_on_order_select_a_25ohd_drafted_but_not_selected_still_counts(client: httpx.AsyncClient) -> None:
    request = order_request(
        [VITD_1_25, VITD_25],
        hook="order-select",
        selections=["ServiceRequest/sr-125"],
        vitamin_d=[],
        electrolytes=normal_electrolytes(),
        conditions=[],
        pending_orders=[],
    )
    (card,) = await cards(client, request, SELECT)
    assert actions(card) == [("delete", "ServiceRequest/sr-125")]


# --- products into a hypercalcaemia ---------------------------------------------------------------


def draft(text: str, **fields: Any) -> dict[str, Any]:
    resource = medication("x", status="draft", id="mr-5")
    resource["medicationCodeableConcept"] = {"text": text}
    return resource | fields


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("Vit D 50,000 units weekly", "Vitamin D"),
        ("Os-Cal 500 + D", "Calcium carbonate with vitamin D"),
        ("Calcium 600 + D", "Calcium with vitamin D"),
        ("D-Vi-Sol 400 units/mL", "Cholecalciferol"),
        ("Replesta 50,000 IU", "Cholecalciferol"),
        ("Drisdol 50,000 unit capsule", "Ergocalciferol"),
        ("Caltrate 600+D3", "Calcium carbonate with cholecalciferol"),
    ],
)
async def test_vitamin_d_in_free_text_or_by_brand_is_cautioned_past_a_high_calcium(
    client: httpx.AsyncClient, text: str, named: str
) -> None:
    request = order_request([draft(text)], vitamin_d=[obs("62292-8", 40, "ng/mL")], electrolytes=CALCIUM_11_6)
    (card,) = await cards(client, request)
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "warning"
    assert card["summary"] == f"{named} ordered while Ca 11.6 mg/dL (2026-11-20): reconsider"
    assert card["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "description": "Delete the draft order",
        "resourceId": "MedicationRequest/mr-5",
    }


@pytest.mark.parametrize(
    ("text", "calcium", "indicator"),
    [
        ("Calcium carbonate 500 MG Oral Tablet", 11.6, "warning"),
        ("Tums 750 mg", 11.6, "warning"),
        ("calcium citrate 950 mg", 12.4, "critical"),  # past the critical calcium
        ("Calcium 600 mg tablet", 11.6, "warning"),
        ("calcium gluconate 1 g", 10.2, None),  # the top of the range is in range
    ],
)
async def test_a_calcium_only_product_past_a_high_calcium(
    client: httpx.AsyncClient, text: str, calcium: float, indicator: str | None
) -> None:
    electrolytes = [obs("2823-3", 4.2, "mmol/L"), obs("17861-6", calcium, "mg/dL", "2026-11-20")]
    found = await cards(
        client, order_request([draft(text)], vitamin_d=[obs("62292-8", 40, "ng/mL")], electrolytes=electrolytes)
    )
    if indicator is None:
        assert found == []
        return
    (card,) = found
    assert card["source"]["topic"]["code"] == "calcium-supplement-caution" and card["indicator"] == indicator
    assert f"Ca {calcium} mg/dL (2026-11-20)" in card["summary"]
    assert "calcium supplements are among the causes of hypercalcaemia" in card["detail"]


async def test_a_calcium_flagged_high_with_no_value_still_cautions(client: httpx.AsyncClient) -> None:
    calcium = obs("17861-6", when="2026-11-20", interpretation=interpretation("HH"))
    found = await cards(client, order_request([draft("Os-Cal 500 + D")], vitamin_d=[obs("62292-8", 40, "ng/mL")],
                                              electrolytes=[obs("2823-3", 4.2, "mmol/L"), calcium]))  # fmt: skip
    (card,) = found
    assert card["indicator"] == "critical" and "Ca flagged HH (2026-11-20)" in card["summary"]


@pytest.mark.parametrize(
    "resource",
    [
        draft("Vectical 3 mcg/g ointment"),
        draft("calcitriol 3 MCG/GM Topical Ointment"),
        draft("calcipotriene cream"),
        draft("calcitriol 3 mcg/g", dosageInstruction=[{"route": {"text": "topical"}}]),
        draft("lidocaine 5% patch"),
        draft("atorvastatin calcium 40 mg"),
    ],
    ids=["vectical", "ointment", "calcipotriene", "topical-route", "lidocaine", "atorvastatin-calcium"],
)
async def test_topical_analogues_and_look_alikes_raise_no_caution(
    client: httpx.AsyncClient, resource: dict[str, Any]
) -> None:
    request = order_request([resource], vitamin_d=[obs("62292-8", 40, "ng/mL")], electrolytes=CALCIUM_11_6)
    assert await cards(client, request) == []


async def test_the_caution_names_the_active_supplement_to_stop(client: httpx.AsyncClient) -> None:
    """Vitamin D already taken and calcium high: stop it and evaluate, never "before any vitamin D
    is given" (rulebook, "Calcium")."""
    request = order_request(
        [draft("Vit D 1000 units")],
        vitamin_d=[obs("62292-8", 40, "ng/mL")],
        electrolytes=CALCIUM_11_6,
        medications=[medication("Os-Cal 500 + D")],
    )
    kinds_found = {c["source"]["topic"]["code"]: c for c in await cards(client, request)}
    caution = kinds_found["vitd-supplement-caution"]
    assert "consider stopping calcium carbonate with vitamin D and evaluating the hypercalcaemia" in caution["detail"]
    assert "before any vitamin D is given" not in caution["detail"]
