"""patient-view where harm is closest (docs/clinical-rules.md, "vitd-high", "Calcium",
"electrolytes-abnormal", "Age", "Treatment begun", "Card text"): vitamin D toxicity worded as a
stop, never as a dose review; a hypercalcaemia with vitamin D or calcium already taken; the medicines
an abnormal card names and the sources it cites; critical values at any age."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import card_text as text
from tests.builders import (
    condition,
    hook_request,
    interpretation,
    medication,
    normal_electrolytes,
    obs,
    patient_view_cards,
)

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
AAFP = "https://www.aafp.org/pubs/afp/issues/2012/0815/p350.html"
FDA_PPI = (
    "https://www.fda.gov/drugs/drug-safety-and-availability/"
    "fda-drug-safety-communication-low-magnesium-levels-can-be-associated-long-term-use-proton-pump"
)


def calcium(value: float, when: str = "2026-11-20") -> list[dict[str, Any]]:
    return [
        obs("2823-3", 4.2, "mmol/L", when),
        obs("19123-9", 2.0, "mg/dL", when),
        obs("17861-6", value, "mg/dL", when),
    ]


async def test_toxicity_is_a_stop_not_a_dose_review(client: httpx.AsyncClient) -> None:
    """25(OH)D 165 ng/mL, calcium 11.4, on 10,000 IU a day: critical, "consider stopping"."""
    request = hook_request(
        [obs("62292-8", 165, "ng/mL", "2026-11-20")],
        calcium(11.4),
        medications=[medication("Vitamin D3 10,000 IU daily")],
    )
    card = (await patient_view_cards(client, request))["vitd-high"]
    assert card["indicator"] == "critical"
    assert "consider stopping cholecalciferol" in card["summary"]
    assert "consider stopping cholecalciferol and evaluating the hypercalcaemia" in card["detail"]
    for never in ("review the dose", "before any vitamin D is given"):
        assert never not in text(card).lower()


async def test_a_high_level_on_vitamin_d_with_normal_calcium_says_stop_it(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 120, "ng/mL", "2026-11-20")], calcium(9.4), medications=[medication("Drisdol 50,000 unit")]
    )
    card = (await patient_view_cards(client, request))["vitd-high"]
    assert card["indicator"] == "warning"  # above 100, below 150, calcium in range
    assert card["summary"].endswith("high; consider stopping ergocalciferol")
    assert "consider stopping it, and check serum calcium" in card["detail"]


async def test_high_with_calcium_high_and_a_vitamin_d_product_is_critical(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 110, "ng/mL", "2026-11-20")], calcium(10.8), medications=[medication("calcitriol 0.25 mcg")]
    )
    card = (await patient_view_cards(client, request))["vitd-high"]
    assert card["indicator"] == "critical"


@pytest.mark.parametrize(
    ("taken", "stop"),
    [
        ("Os-Cal 500 + D", "calcium carbonate with vitamin D"),
        ("Calcium carbonate 600 mg", "calcium carbonate"),
        ("Rocaltrol 0.25 mcg", "calcitriol"),
    ],
)
async def test_low_vitamin_d_with_hypercalcaemia_on_a_supplement_says_stop_it(
    client: httpx.AsyncClient, taken: str, stop: str
) -> None:
    request = hook_request(
        [obs("62292-8", 12, "ng/mL", "2026-09-01")],
        calcium(11.6),
        medications=[medication(taken, authored="2026-08-01")],
    )
    card = (await patient_view_cards(client, request))["vitd-deficient"]
    assert card["summary"].endswith(f"calcium high: consider stopping {stop}")
    assert f"consider stopping {stop} and evaluating the hypercalcaemia" in card["detail"]
    assert "before any vitamin D is given" not in text(card)


async def test_low_vitamin_d_with_hypercalcaemia_and_nothing_taken(client: httpx.AsyncClient) -> None:
    card = (await patient_view_cards(client, hook_request([obs("62292-8", 12, "ng/mL")], calcium(11.6))))[
        "vitd-deficient"
    ]
    assert "hypercalcaemia needs evaluation before any vitamin D is given" in card["detail"]


async def test_a_topical_analogue_does_not_silence_a_deficiency(client: httpx.AsyncClient) -> None:
    """Vectical started after the result is no treatment begun (rulebook, "Topical vitamin D analogues")."""
    request = hook_request(
        [obs("62292-8", 12, "ng/mL", "2026-10-01")],
        normal_electrolytes(),
        medications=[medication("Vectical 3 mcg/g ointment", authored="2026-11-01")],
    )
    found = await patient_view_cards(client, request)
    assert "vitd-deficient" in found and "consider a supplementation review" in found["vitd-deficient"]["summary"]


async def test_oral_vitamin_d_started_after_the_result_is_treatment_begun(client: httpx.AsyncClient) -> None:
    request = hook_request(
        [obs("62292-8", 12, "ng/mL", "2026-10-01")],
        normal_electrolytes(),
        medications=[medication("D-Vi-Sol drops", authored="2026-11-01")],
    )
    assert "vitd-deficient" not in await patient_view_cards(client, request)


# --- medicines named and sources cited on abnormal cards -------------------------------------------


@pytest.mark.parametrize(
    ("electrolytes", "medicines", "said", "link"),
    [
        (
            [obs("2823-3", 4.2, "mmol/L"), obs("19123-9", 1.3, "mg/dL"), obs("17861-6", 9.4, "mg/dL")],
            ["omeprazole 20 mg", "furosemide 40 mg"],
            "Medicines taken that can lower magnesium: omeprazole (proton pump inhibitor) and furosemide (loop "
            "diuretic).",
            FDA_PPI,
        ),
        (
            calcium(11.0),
            ["calcitriol 0.25 mcg", "hydrochlorothiazide 25 mg"],
            "Medicines taken that can raise calcium: calcitriol (vitamin D) and hydrochlorothiazide (thiazide "
            "diuretic).",
            "https://www.bmj.com/content/350/bmj.h2723",
        ),
        (
            [obs("2823-3", 5.6, "mmol/L"), obs("19123-9", 2.0, "mg/dL"), obs("17861-6", 9.4, "mg/dL")],
            ["spironolactone 25 mg", "lisinopril 10 mg"],
            "Medicines taken that can raise potassium: spironolactone (potassium-sparing diuretic) and lisinopril "
            "(ACE inhibitor).",
            "https://doi.org/10.1007/s40264-014-0196-1",
        ),
    ],
    ids=["low-magnesium", "high-calcium", "high-potassium"],
)  # fmt: skip
async def test_an_abnormal_card_names_the_medicines_that_move_it_and_cites_them(
    client: httpx.AsyncClient, electrolytes: list[Any], medicines: list[str], said: str, link: str
) -> None:
    request = hook_request([obs("62292-8", 40, "ng/mL")], electrolytes, medications=[medication(m) for m in medicines])
    card = (await patient_view_cards(client, request))["electrolytes-abnormal"]
    assert said in card["detail"]
    urls = [link["url"] for link in card.get("links", [])]
    assert link in urls and AAFP not in urls  # no cramps documented: no cramp article
    assert card["source"]["label"].startswith("Laboratory reference range")


async def test_the_cramp_article_only_beside_the_cramp_remark(client: httpx.AsyncClient) -> None:
    electrolytes = [obs("2823-3", 3.1, "mmol/L"), obs("19123-9", 2.0, "mg/dL"), obs("17861-6", 9.4, "mg/dL")]
    without = (await patient_view_cards(client, hook_request([obs("62292-8", 40, "ng/mL")], electrolytes)))[
        "electrolytes-abnormal"
    ]
    assert "links" not in without and "muscle cramps" not in without["detail"]
    with_cramps = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], electrolytes, conditions=[condition("R25.2")])
    )
    card = with_cramps["electrolytes-abnormal"]
    assert [link["url"] for link in card["links"]] == [AAFP] and "muscle cramps (Allen and Kirby, AAFP 2012)" in card[
        "detail"
    ]


async def test_very_low_albumin_keeps_a_low_calcium_low_and_suggests_an_ionized_calcium(
    client: httpx.AsyncClient,
) -> None:
    electrolytes = [*calcium(8.0, "2026-11-20"), obs("1751-7", 2.0, "g/dL", "2026-11-20")]
    card = (await patient_view_cards(client, hook_request([obs("62292-8", 40, "ng/mL")], electrolytes)))[
        "electrolytes-abnormal"
    ]
    assert "Ca 8.0 mg/dL low on 2026-11-20" in card["summary"]
    assert "too low for a corrected calcium to be trusted: corrected estimate 9.6 mg/dL" in card["detail"]
    (suggestion,) = card["suggestions"]
    assert suggestion["actions"][0]["resource"]["code"]["coding"][0]["code"] == "1995-0"


# --- critical values at any age ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "electrolytes",
    [
        [obs("2823-3", 6.8, "mmol/L", "2026-11-20"), obs("19123-9", 2.0, "mg/dL"), obs("17861-6", 9.4, "mg/dL")],
        [obs("2823-3", when="2026-11-20", interpretation=interpretation("HH")), obs("19123-9", 2.0, "mg/dL")],
        calcium(12.5),
    ],
    ids=["potassium-6.8", "potassium-flagged-HH", "calcium-12.5"],
)
async def test_a_critical_value_is_shown_at_seventeen(client: httpx.AsyncClient, electrolytes: list[Any]) -> None:
    request = hook_request(
        [obs("62292-8", 12, "ng/mL")], electrolytes, birth_date="2009-06-01", conditions=[condition("R25.2")]
    )
    found = await patient_view_cards(client, request)
    assert list(found) == ["electrolytes-abnormal"]
    card = found["electrolytes-abnormal"]
    assert card["indicator"] == "critical" and card["summary"].startswith("Critical: ")
    assert "muscle cramps" not in card["detail"] and "links" not in card
