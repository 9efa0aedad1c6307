"""order-select and order-sign: duplicate and wrong vitamin D tests, and vitamin D ordered while
levels or calcium are already high."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cds_service.protocol import DRAFT_LIMIT
from tests.builders import (
    LOINC,
    RXNORM,
    condition,
    medication,
    normal_electrolytes,
    obs,
    order_request,
    service_request,
)

pytestmark = pytest.mark.anyio
SELECT = "/cds-services/vitamin-d-order-select"
SIGN = "/cds-services/vitamin-d-order-sign"
PATIENT_REF = {"reference": "Patient/p1"}


VITD_25 = service_request(("http://acme.example/orders", "LAB123"), (LOINC, "62292-8"))
VITD_1_25 = service_request(("http://acme.example/orders", "LAB456"), (LOINC, "1649-3"), id="sr-125")
CHOLECALCIFEROL = medication("cholecalciferol 50000 UNT Oral Capsule", "316965", status="draft", id="mr-1")


def kinds(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


def only_card(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    return card


# --- vitd-duplicate-order -------------------------------------------------------------------------


@pytest.mark.parametrize("url,hook", [(SIGN, "order-sign"), (SELECT, "order-select")])
async def test_duplicate_25ohd_order(client: httpx.AsyncClient, url: str, hook: str) -> None:
    request = order_request([VITD_25], hook=hook, vitamin_d=[obs("62292-8", 24, "ng/mL", "2026-10-01")])
    card = only_card(await client.post(url, json=request))
    assert card["source"]["topic"]["code"] == "vitd-duplicate-order" and card["indicator"] == "info"
    assert "55 days ago" in card["summary"] and "24 ng/mL" in card["summary"]
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    assert action == {"type": "delete", "description": "Delete the draft order", "resourceId": "ServiceRequest/sr-1"}
    assert card["selectionBehavior"] == "any"


@pytest.mark.parametrize(("when", "fires"), [("2026-08-27", True), ("2026-08-26", False), ("2025-11-30", False)])
async def test_duplicate_window_is_90_days(client: httpx.AsyncClient, when: str, fires: bool) -> None:
    # as of 2026-11-25: 2026-08-27 is 90 calendar days back, 2026-08-26 is 91
    request = order_request([VITD_25], vitamin_d=[obs("62292-8", 24, "ng/mL", when)])
    assert (kinds(await client.post(SIGN, json=request)) == ["vitd-duplicate-order"]) is fires


async def test_duplicate_by_a_proxy_code_result_and_no_delete_without_an_id(client: httpx.AsyncClient) -> None:
    draft = service_request((LOINC, "62292-8"), id=None)
    request = order_request([draft], vitamin_d=[obs("1989-3", 31, "ng/mL", "2026-11-20")])
    card = only_card(await client.post(SIGN, json=request))
    assert "suggestions" not in card and "selectionBehavior" not in card


async def test_no_duplicate_without_a_usable_result(client: httpx.AsyncClient) -> None:
    unreadable = obs("62292-8", 24, "mg/L", "2026-11-20")
    prelim = obs("62292-8", 24, "ng/mL", "2026-11-20", status="preliminary")
    request = order_request([VITD_25], vitamin_d=[unreadable, prelim])
    assert kinds(await client.post(SIGN, json=request)) == []


# --- vitd-order-1-25 ------------------------------------------------------------------------------


async def test_1_25_order_is_replaced_by_25ohd(client: httpx.AsyncClient) -> None:
    request = order_request([VITD_1_25], vitamin_d=[], conditions=[])
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-order-1-25"
    (suggestion,) = card["suggestions"]
    delete, create = suggestion["actions"]
    assert delete == {
        "type": "delete",
        "description": "Delete the draft 1,25-dihydroxyvitamin D order",
        "resourceId": "ServiceRequest/sr-125",
    }
    resource = create["resource"]
    assert create["type"] == "create" and resource["code"]["coding"][0]["code"] == "62292-8"
    assert resource["subject"] == PATIENT_REF
    assert resource["requester"] == {"reference": "Practitioner/dr-1", "display": "Dr One"}
    assert resource["encounter"] == {"reference": "Encounter/enc-9"}
    assert "conditions could not be read" not in card["detail"]


async def test_1_25_order_is_fine_in_ckd_stage_4_5(client: httpx.AsyncClient) -> None:
    request = order_request([VITD_1_25], vitamin_d=[], conditions=[condition("N18.5")])
    assert kinds(await client.post(SIGN, json=request)) == []


async def test_1_25_order_when_conditions_are_unavailable(client: httpx.AsyncClient) -> None:
    request = order_request([VITD_1_25], vitamin_d=[])
    del request["prefetch"]["conditions"]
    card = only_card(await client.post(SIGN, json=request))
    # Revision 2026-12-07 (1,25-D exceptions): the card asks for every exception it could not check.
    assert "The conditions (CKD, dialysis, granulomatous disease) could not be read" in card["detail"]
    assert "check them before replacing the order" in card["detail"]


# --- vitd-supplement-caution ----------------------------------------------------------------------


async def test_vitamin_d_ordered_while_25ohd_is_high(client: httpx.AsyncClient) -> None:
    request = order_request(
        [CHOLECALCIFEROL], vitamin_d=[obs("62292-8", 120, "ng/mL", "2026-11-01")], electrolytes=normal_electrolytes()
    )
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "warning"
    # Revision 2026-12-07 (vitd-supplement-caution): the summary holds the value, unit and date.
    assert card["summary"] == "Cholecalciferol ordered while 25(OH)D 120 ng/mL (2026-11-01): reconsider"
    (suggestion,) = card["suggestions"]  # the suggestion removes the draft
    assert [(a["type"], a["resourceId"]) for a in suggestion["actions"]] == [("delete", "MedicationRequest/mr-1")]
    assert {r["code"] for r in card["overrideReasons"]} == {"clinically-indicated", "addressed", "not-relevant"}


@pytest.mark.parametrize("draft_id", ["../Patient/p1", "a/b", "x y", "1?_method=DELETE", "%2E%2E%2FPatient", "x" * 65])
async def test_a_draft_whose_id_is_no_fhir_id_is_cautioned_without_an_action_on_it(
    client: httpx.AsyncClient, draft_id: str
) -> None:
    """From an attack run: such an id became `MedicationRequest/../Patient/p1` in a delete action,
    which an EHR resolving the reference could apply to another resource. The draft is still judged
    and the card still shown, with no action naming it."""
    draft = CHOLECALCIFEROL | {"id": draft_id}
    request = order_request(
        [draft], vitamin_d=[obs("62292-8", 120, "ng/mL", "2026-11-01")], electrolytes=normal_electrolytes()
    )
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "warning"
    assert "suggestions" not in card and draft_id not in str(card)


async def test_vitamin_d_ordered_while_calcium_is_high(client: httpx.AsyncClient) -> None:
    electrolytes = [obs("2823-3", 4.2, "mmol/L"), obs("17861-6", 10.9, "mg/dL")]
    request = order_request([CHOLECALCIFEROL], vitamin_d=[obs("62292-8", 45, "ng/mL")], electrolytes=electrolytes)
    card = only_card(await client.post(SIGN, json=request))
    # Revision 2026-12-07 (vitd-supplement-caution): the summary holds the value, unit and date.
    assert card["summary"] == "Cholecalciferol ordered while Ca 10.9 mg/dL (2026-11-01): reconsider"
    assert "10.9 mg/dL" in card["detail"] and "8.6-10.2 mg/dL" in card["detail"]


async def test_vitamin_d_ordered_with_normal_levels_is_quiet(client: httpx.AsyncClient) -> None:
    request = order_request(
        [CHOLECALCIFEROL], vitamin_d=[obs("62292-8", 18, "ng/mL")], electrolytes=normal_electrolytes()
    )
    assert kinds(await client.post(SIGN, json=request)) == []


async def test_vitamin_d_by_the_ingredient_code_in_a_contained_medication(client: httpx.AsyncClient) -> None:
    draft = medication("x", status="draft", id="mr-2")
    del draft["medicationCodeableConcept"]
    draft["contained"] = [
        {"resourceType": "Medication", "id": "m", "code": {"coding": [{"system": RXNORM, "code": "2418"}]}}
    ]
    draft["medicationReference"] = {"reference": "#m"}
    request = order_request([draft], vitamin_d=[obs("62292-8", 160, "ng/mL")], electrolytes=normal_electrolytes())
    card = only_card(await client.post(SIGN, json=request))
    # Revision 2026-12-07 (vitd-supplement-caution): the summary holds the value, unit and date.
    assert card["summary"].startswith("Critical: Cholecalciferol ordered while 25(OH)D 160 ng/mL (2026-11-01)")
    assert card["indicator"] == "critical"


CALCIUM_11_5 = [obs("2823-3", 4.2, "mmol/L"), obs("17861-6", 11.5, "mg/dL")]


@pytest.mark.parametrize(
    ("text", "product"),
    [
        ("calcitriol 0.25 MCG Oral Capsule", "Calcitriol"),
        # Revision 2026-12-07 (vitd-supplement-caution): the combination is named, not its vitamin D part.
        ("Calcium Carbonate 600 MG / Cholecalciferol 400 UNT Oral Tablet", "Calcium carbonate with cholecalciferol"),
        ("Vitamin D3 2000 unit", "Cholecalciferol"),
        ("ergocalciferol 50000 UNT Oral Capsule", "Ergocalciferol"),
        ("Paricalcitol 1 MCG", "Paricalcitol"),
        ("Calcium 500 mg + vitamin D 200 unit", "Calcium with vitamin D"),
    ],
)
async def test_every_vitamin_d_product_is_cautioned_past_a_high_calcium(
    client: httpx.AsyncClient, text: str, product: str
) -> None:
    """Coded or in free text, alone or combined (was: nothing for calcitriol, combinations, text)."""
    draft = medication("x", status="draft", id="mr-7")
    draft["medicationCodeableConcept"] = {"text": text}
    request = order_request([draft], vitamin_d=[obs("62292-8", 45, "ng/mL")], electrolytes=CALCIUM_11_5)
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "warning"
    # Revision 2026-12-07 (vitd-supplement-caution): the summary holds the value, unit and date.
    assert card["summary"].startswith(f"{product} ordered while Ca 11.5 mg/dL (2026-11-01)")
    assert "hypercalcaemia needs evaluation before any vitamin D is given" in card["detail"]
    assert card["suggestions"][0]["actions"] == [
        {"type": "delete", "description": "Delete the draft order", "resourceId": "MedicationRequest/mr-7"}
    ]


@pytest.mark.parametrize(
    ("vitamin_d", "calcium", "indicator"),
    [
        (45, 10.2, None),  # the top of the range is in range
        (45, 10.3, "warning"),
        (45, 12.0, "warning"),
        (45, 12.1, "critical"),  # past the critical calcium
        (100, 9.4, None),
        (101, 9.4, "warning"),
        (150, 9.4, "warning"),
        (151, 9.4, "critical"),  # very high 25(OH)D
    ],
)
async def test_the_caution_turns_critical_past_a_critical_calcium_or_a_very_high_level(
    client: httpx.AsyncClient, vitamin_d: float, calcium: float, indicator: str | None
) -> None:
    electrolytes = [obs("2823-3", 4.2, "mmol/L"), obs("17861-6", calcium, "mg/dL")]
    request = order_request(
        [CHOLECALCIFEROL], vitamin_d=[obs("62292-8", vitamin_d, "ng/mL")], electrolytes=electrolytes
    )
    cards = (await client.post(SIGN, json=request)).json()["cards"]
    assert [c["indicator"] for c in cards] == ([indicator] if indicator else [])


async def test_an_old_ionized_calcium_does_not_hide_todays_high_total(client: httpx.AsyncClient) -> None:
    electrolytes = [obs("1995-0", 1.20, "mmol/L", "2026-09-06"), obs("17861-6", 13.0, "mg/dL", "2026-11-25")]
    request = order_request([CHOLECALCIFEROL], vitamin_d=[obs("62292-8", 45, "ng/mL")], electrolytes=electrolytes)
    card = only_card(await client.post(SIGN, json=request))
    # Revision 2026-12-07 (Units): the value at the laboratory's precision, 13.0 as sent.
    assert card["indicator"] == "critical" and "13.0 mg/dL" in card["detail"]


async def test_a_vitamin_d_product_drafted_while_another_is_active(client: httpx.AsyncClient) -> None:
    request = order_request(
        [medication("Vitamin D3 2000 unit", status="draft", id="mr-9")],
        vitamin_d=[obs("62292-8", 18, "ng/mL")],
        electrolytes=normal_electrolytes(),
        medications=[medication("ergocalciferol 50000 UNT Oral Capsule"), medication("furosemide 20 MG")],
    )
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-duplicate-therapy" and card["indicator"] == "info"
    assert card["summary"] == "Cholecalciferol ordered while ergocalciferol is already on the medication list"
    assert card["suggestions"][0]["actions"][0] == {
        "type": "delete",
        "description": "Delete the draft order",
        "resourceId": "MedicationRequest/mr-9",
    }
    assert {r["code"] for r in card["overrideReasons"]} == {"both-intended", "addressed", "not-relevant"}


async def test_duplicate_therapy_and_caution_together(client: httpx.AsyncClient) -> None:
    request = order_request(
        [CHOLECALCIFEROL],
        vitamin_d=[obs("62292-8", 45, "ng/mL")],
        electrolytes=CALCIUM_11_5,
        medications=[medication("calcitriol 0.25 MCG Oral Capsule")],
    )
    assert kinds(await client.post(SIGN, json=request)) == ["vitd-supplement-caution", "vitd-duplicate-therapy"]


@pytest.mark.parametrize("status", ["stopped", "completed", "draft"])
async def test_only_an_active_product_makes_a_duplicate(client: httpx.AsyncClient, status: str) -> None:
    request = order_request(
        [CHOLECALCIFEROL],
        vitamin_d=[obs("62292-8", 18, "ng/mL")],
        electrolytes=normal_electrolytes(),
        medications=[medication("ergocalciferol 50000 UNT", status=status)],
    )
    assert kinds(await client.post(SIGN, json=request)) == []


async def test_a_non_vitamin_d_draft_gets_nothing(client: httpx.AsyncClient) -> None:
    request = order_request(
        [medication("atorvastatin 40 MG Oral Tablet", status="draft", id="mr-3")],
        vitamin_d=[obs("62292-8", 180, "ng/mL")],
        electrolytes=CALCIUM_11_5,
        medications=[medication("cholecalciferol 1000 UNT")],
    )
    assert kinds(await client.post(SIGN, json=request)) == []


# --- which drafts count ---------------------------------------------------------------------------


async def test_order_select_counts_only_the_selected_orders(client: httpx.AsyncClient) -> None:
    both = [VITD_25, VITD_1_25]
    request = order_request(
        both,
        hook="order-select",
        selections=["ServiceRequest/sr-125"],
        vitamin_d=[obs("62292-8", 24, "ng/mL")],
        conditions=[],
    )
    assert kinds(await client.post(SELECT, json=request)) == ["vitd-order-1-25"]
    request = order_request(both, hook="order-sign", vitamin_d=[obs("62292-8", 24, "ng/mL")], conditions=[])
    assert sorted(kinds(await client.post(SIGN, json=request))) == ["vitd-duplicate-order", "vitd-order-1-25"]


async def test_drafts_without_a_usable_code_are_ignored(client: httpx.AsyncClient) -> None:
    drafts = [
        service_request(("http://acme.example/orders", "LAB123"), id="sr-2"),
        {"resourceType": "ServiceRequest", "id": "sr-3", "code": "62292-8"},
        {"resourceType": "MedicationRequest", "id": "mr-9", "status": "draft"},
        medication("metformin 500 MG", status="draft", id="mr-10"),
        {"resourceType": "Observation", "id": "o"},
    ]
    request = order_request(drafts, vitamin_d=[obs("62292-8", 160, "ng/mL")])
    request["context"]["draftOrders"]["entry"].append({"fullUrl": "no resource"})
    assert kinds(await client.post(SIGN, json=request)) == []


async def test_no_relevant_draft_needs_no_data(client: httpx.AsyncClient) -> None:
    """Without a vitamin D draft the record is not read: no prefetch, no fhirServer, still 200."""
    request = order_request([medication("metformin 500 MG", status="draft", id="mr-10")])
    del request["prefetch"]
    assert kinds(await client.post(SIGN, json=request)) == []


@pytest.mark.parametrize(
    ("url", "mutate", "field"),
    [
        (SIGN, lambda r: r["context"].pop("draftOrders"), "context.draftOrders"),
        (SIGN, lambda r: r["context"].update(draftOrders={"resourceType": "Patient"}), "context.draftOrders"),
        (SELECT, lambda r: r["context"].pop("selections"), "context.selections"),
        (SELECT, lambda r: r["context"].update(selections=[]), "context.selections"),
        (SIGN, lambda r: r.update(hook="order-select"), "hook"),
    ],
)
async def test_bad_order_contexts_are_400(client: httpx.AsyncClient, url: str, mutate: Any, field: str) -> None:
    hook = "order-select" if url == SELECT else "order-sign"
    request = order_request([VITD_25], hook=hook, vitamin_d=[])
    mutate(request)
    response = await client.post(url, json=request)
    assert response.status_code == 400 and response.json()["issue"][0]["expression"] == [field]


async def test_vitamin_d_is_cautioned_past_a_high_level_an_unreadable_repeat_follows(client: httpx.AsyncClient) -> None:
    vitamin_d = [obs("62292-8", 200, when="2026-11-20"), obs("62292-8", 180, "ng/mL", "2026-10-20")]  # no unit
    request = order_request([CHOLECALCIFEROL], vitamin_d=vitamin_d, electrolytes=normal_electrolytes())
    card = only_card(await client.post(SIGN, json=request))
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "critical"


@pytest.mark.parametrize(("url", "hook"), [(SIGN, "order-sign"), (SELECT, "order-select")])
async def test_the_drafts_an_order_hook_reads_are_bounded(client: httpx.AsyncClient, url: str, hook: str) -> None:
    """5,000 vitamin D drafts while 25(OH)D is very high drew 10,000 cards (14 MB): past the limit
    the call is a 400 naming the draft orders and the limit; at the limit every draft is read."""
    high = [obs("62292-8", 180, "ng/mL", "2026-11-20")]

    def drafts(n: int) -> list[dict[str, Any]]:
        return [
            medication("cholecalciferol 1000 UNT Oral Tablet", "316965", status="draft", id=f"mr-{i}") for i in range(n)
        ]

    over = await client.post(url, json=order_request(drafts(DRAFT_LIMIT + 1), hook=hook, vitamin_d=high))
    assert over.status_code == 400
    issue = over.json()["issue"][0]
    assert issue["expression"] == ["context.draftOrders"] and f"at most {DRAFT_LIMIT}" in issue["diagnostics"]
    at_limit = await client.post(url, json=order_request(drafts(DRAFT_LIMIT), hook=hook, vitamin_d=high))
    assert kinds(at_limit).count("vitd-supplement-caution") == DRAFT_LIMIT
