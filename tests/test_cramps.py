"""patient-view with the leg-cramp context: conditions and active medications."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import condition, hook_request, medication, normal_electrolytes, obs

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
CRAMPS = [condition("R25.2")]


def cards(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}


@pytest.mark.parametrize("vitamin_d", [[obs("62292-8", 42, "ng/mL")], None], ids=["sufficient", "unknown"])
async def test_cramps_make_the_electrolyte_check_fire(client: httpx.AsyncClient, vitamin_d: Any) -> None:
    request = hook_request(vitamin_d, [obs("2823-3", 4.2, "mmol/L")], conditions=CRAMPS)
    got = cards(await client.post(URL, json=request))
    assert list(got) == ["electrolytes-check"]
    check = got["electrolytes-check"]
    assert check["summary"].startswith("Leg cramps documented: magnesium and calcium not checked")
    assert "Leg cramps are documented (R25.2);" in check["detail"]
    assert "None of the sources cited here shows that vitamin D relieves leg cramps" in check["detail"]


async def test_without_cramps_a_sufficient_patient_gets_no_check(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 42, "ng/mL")],
        [obs("2823-3", 4.2, "mmol/L")],
        conditions=[condition("R25.2", clinical="resolved")],
    )
    assert cards(await client.post(URL, json=request)) == {}


async def test_cramps_with_recent_electrolytes_give_no_check(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 42, "ng/mL")], normal_electrolytes(), conditions=CRAMPS)
    assert cards(await client.post(URL, json=request)) == {}


async def test_vitamin_d_card_mentions_cramps_causes_and_drugs(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 12, "ng/mL")],
        normal_electrolytes(),
        conditions=[*CRAMPS, condition("E11.9"), condition("N18.3"), condition("I10")],
        medications=[
            medication("Furosemide 40 MG Oral Tablet", "310429"),
            medication("atorvastatin 20 MG Oral Tablet"),
        ],
    )
    detail = cards(await client.post(URL, json=request))["vitd-deficient"]["detail"]
    assert "Leg cramps are documented** (R25.2)" in detail and "None of the sources cited here" in detail
    assert "Other documented causes of cramps: chronic kidney disease and diabetes." in detail
    assert "furosemide (loop diuretic) and atorvastatin (statin)" in detail
    assert "Consider a supplementation review" in detail


async def test_low_potassium_on_a_diuretic_names_the_diuretic(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 42, "ng/mL")],
        [obs("2823-3", 3.1, "mmol/L"), obs("19123-9", 2.0, "mg/dL"), obs("17861-6", 9.4, "mg/dL")],
        medications=[medication("hydrochlorothiazide 25 MG Oral Tablet")],
    )
    card = cards(await client.post(URL, json=request))["electrolytes-abnormal"]
    # Revision 2026-12-07 (medicines named on abnormal cards): per analyte and direction, with the group.
    assert "Medicines taken that can lower potassium: hydrochlorothiazide (thiazide diuretic)." in card["detail"]
    assert "https://pmc.ncbi.nlm.nih.gov/articles/PMC4357351/" in {link["url"] for link in card["links"]}
    assert "muscle cramps" not in card["detail"]  # no cramps documented: no cramp remark


async def test_ckd_stage_4_takes_the_supplementation_remark_away(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes(), conditions=[condition("N18.4")])
    card = cards(await client.post(URL, json=request))["vitd-deficient"]
    # Revision 2026-12-07 (CKD and dialysis codes): one remark for stage 4-5 and dialysis alike.
    assert (
        "stage 4-5 or dialysis is documented:** vitamin D and calcium need specialist interpretation" in card["detail"]
    )
    assert "supplementation" not in card["detail"] and "supplementation" not in card["summary"]
    assert card["summary"].endswith("vitamin D deficient; CKD 4-5 or dialysis: specialist interpretation")


async def test_a_vitamin_d_supplement_already_taken_is_named(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 25, "ng/mL")],
        normal_electrolytes(),
        medications=[medication("Cholecalciferol 2000 UNT Oral Capsule")],
    )
    card = cards(await client.post(URL, json=request))["vitd-insufficient"]
    assert "The patient is on cholecalciferol; review dose and adherence." in card["detail"]
    assert "Consider a supplementation review" not in card["detail"]
    assert card["summary"].endswith("on cholecalciferol: review dose and adherence")


async def test_high_level_on_a_supplement(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 160, "ng/mL")],
        normal_electrolytes(),
        medications=[medication("ergocalciferol 50000 UNT Oral Capsule")],
    )
    card = cards(await client.post(URL, json=request))["vitd-high"]
    assert card["indicator"] == "critical" and "The patient is on ergocalciferol" in card["detail"]


async def test_conditions_unavailable_only_remove_that_reasoning(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 12, "ng/mL")], normal_electrolytes(), medications=[medication("Furosemide 40 MG")]
    )
    del request["prefetch"]["conditions"]  # not prefetched, and no fhirServer to fetch it from
    card = cards(await client.post(URL, json=request))["vitd-deficient"]
    assert "The patient's conditions could not be read from the EHR's FHIR server" in card["detail"]
    assert "furosemide" in card["detail"] and "Leg cramps are documented" not in card["detail"]


async def test_another_patients_conditions_do_not_count(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 42, "ng/mL")], [obs("2823-3", 4.2, "mmol/L")], conditions=[condition("R25.2", patient="p2")]
    )
    assert cards(await client.post(URL, json=request)) == {}
