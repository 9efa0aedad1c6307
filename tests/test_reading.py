"""Reading results as clinicians meet them (docs/clinical-rules.md, "Reading results"): corrections
and ties, numbers without a unit, the laboratory's flags, precision and rounding at the cut-points.
Through the HTTP service, as of 2026-11-25 (the `client` fixture's clock)."""

from __future__ import annotations

import json
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
    order_request,
    patient_view_cards,
)

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
CRAMPS = [condition("R25.2")]


# --- corrections and ties -----------------------------------------------------------------------

WHEN = "2026-11-20T08:00:00Z"


@pytest.mark.parametrize(
    ("original", "correction"),
    [
        ({"status": "final"}, {"status": "corrected"}),
        ({"status": "final"}, {"status": "amended"}),
        ({"status": "final", "issued": "2026-11-20T10:00:00Z"}, {"status": "final", "issued": "2026-11-21T09:00:00Z"}),
        (
            {"status": "final", "meta": {"lastUpdated": "2026-11-20T10:00:00Z"}},
            {"status": "final", "meta": {"lastUpdated": "2026-11-22T10:00:00Z"}},
        ),
        ({"status": "Final "}, {"status": " CORRECTED"}),  # status text trimmed, any case
    ],
    ids=["corrected", "amended", "later-issued", "later-updated", "status-text"],
)
@pytest.mark.parametrize("order", ["original-first", "correction-first"])
async def test_a_correction_stands_whatever_the_bundle_order(
    client: httpx.AsyncClient, original: dict[str, Any], correction: dict[str, Any], order: str
) -> None:
    """Two 25(OH)D results of one collection time are one result reported twice: the correction
    (12 ng/mL, deficient) decides, the superseded 45 is neither the latest nor a trend point."""
    first = obs("62292-8", 45, "ng/mL", WHEN, **original)
    second = obs("62292-8", 12, "ng/mL", WHEN, **correction)
    results = [first, second] if order == "original-first" else [second, first]
    found = await patient_view_cards(client, hook_request(results, normal_electrolytes()))
    assert list(found) == ["vitd-deficient"]
    assert "12 ng/mL" in found["vitd-deficient"]["summary"]
    assert "45 ng/mL" not in text(found["vitd-deficient"])


async def test_a_corrected_potassium_replaces_the_normal_original(client: httpx.AsyncClient) -> None:
    results = [
        obs("2823-3", 3.1, "mmol/L", WHEN, status="corrected"),
        obs("2823-3", 4.2, "mmol/L", WHEN),
        obs("19123-9", 2.0, "mg/dL"),
        obs("17861-6", 9.4, "mg/dL"),
    ]
    found = await patient_view_cards(client, hook_request([obs("62292-8", 40, "ng/mL")], results))
    assert "K 3.1 mmol/L low" in found["electrolytes-abnormal"]["summary"]
    assert "4.2 mmol/L" not in text(found["electrolytes-abnormal"])


async def test_a_tie_nothing_breaks_keeps_the_more_concerning_value(client: httpx.AsyncClient) -> None:
    """Same time, same status, no issued or lastUpdated: the Bundle order never decides, and a
    repeat never hides an abnormal value (rulebook, "Corrections and ties")."""
    for results in (
        [obs("2823-3", 4.2, "mmol/L", WHEN), obs("2823-3", 6.4, "mmol/L", WHEN)],
        [obs("2823-3", 6.4, "mmol/L", WHEN), obs("2823-3", 4.2, "mmol/L", WHEN)],
    ):
        found = await patient_view_cards(
            client, hook_request([obs("62292-8", 40, "ng/mL")], [*results, *normal_electrolytes()[1:]])
        )
        assert found["electrolytes-abnormal"]["indicator"] == "critical"
        assert "K 6.4 mmol/L high" in found["electrolytes-abnormal"]["summary"]


# --- numbers without a unit ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["<4", "< 4", "<5", "<=4"])
async def test_a_censored_25ohd_without_unit_deficient_in_every_unit(client: httpx.AsyncClient, value: str) -> None:
    """ "<4": below 4 ng/mL, 1.6 ng/mL (nmol/L) or 4 ng/mL (ug/L): deficient whichever the unit."""
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", when="2026-11-20", valueString=value)], normal_electrolytes())
    )
    assert list(found) == ["vitd-deficient"]
    assert "(unit not reported)" in found["vitd-deficient"]["summary"]


@pytest.mark.parametrize("value", ["<40", ">150", "12"])
async def test_a_number_without_unit_whose_reading_depends_on_the_unit_is_not_read(
    client: httpx.AsyncClient, value: str
) -> None:
    """<40 is deficient in nmol/L (<16 ng/mL) and possibly sufficient in ng/mL: not read, and as
    the newest result it stops the older deficiency card (rulebook, "Unreadable results")."""
    results = [obs("62292-8", when="2026-11-20", valueString=value), obs("62292-8", 12, "ng/mL", "2026-10-01")]
    found = await patient_view_cards(client, hook_request(results, normal_electrolytes()))
    assert "vitd-deficient" not in found and "vitd-high" not in found


# --- laboratory flags ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "indicator", "said"),
    [
        ("HH", "critical", "flagged critically high (HH) by the laboratory"),
        ("LL", "critical", "flagged critically low (LL) by the laboratory"),
        ("AA", "critical", "flagged critically abnormal (AA) by the laboratory"),
        ("H", "warning", "flagged high (H) by the laboratory"),
        ("L", "warning", "flagged low (L) by the laboratory"),
        ("A", "warning", "flagged abnormal (A) by the laboratory"),
    ],
)
async def test_an_unreadable_value_flagged_abnormal_is_an_abnormal_result(
    client: httpx.AsyncClient, flag: str, indicator: str, said: str
) -> None:
    potassium = obs("2823-3", when="2026-11-20", interpretation=interpretation(flag))  # no value at all
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], [potassium, *normal_electrolytes()[1:]])
    )
    card = found["electrolytes-abnormal"]
    assert card["indicator"] == indicator
    assert said in card["detail"] and "the value could not be read (no value)" in card["detail"]
    assert f"K flagged {flag} by the lab (value unreadable) on 2026-11-20" in card["summary"]


@pytest.mark.parametrize("flag", ["N", "<", ">"])
async def test_a_flag_without_direction_makes_no_abnormal_card(client: httpx.AsyncClient, flag: str) -> None:
    potassium = obs("2823-3", when="2026-11-20", interpretation=interpretation(flag))
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], [potassium, *normal_electrolytes()[1:]])
    )
    assert "electrolytes-abnormal" not in found


async def test_a_readable_value_decides_and_a_disagreeing_flag_is_shown(client: httpx.AsyncClient) -> None:
    """K 5.3 flagged N by the laboratory (its own range unsent): the value decides (high against the
    default range), and the laboratory's N is shown beside it, never hidden."""
    potassium = obs("2823-3", 5.3, "mmol/L", "2026-11-20", interpretation=interpretation("N"))
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], [potassium, *normal_electrolytes()[1:]])
    )
    detail = found["electrolytes-abnormal"]["detail"]
    assert "laboratory flag N (normal)" in detail


async def test_a_flagged_unreadable_calcium_counts_as_hypercalcaemia(client: httpx.AsyncClient) -> None:
    calcium = obs("17861-6", when="2026-11-20", valueString="see note", interpretation=interpretation("H"))
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 12, "ng/mL")], [*normal_electrolytes()[:2], calcium])
    )
    assert found["vitd-deficient"]["summary"].endswith("calcium high: evaluate before any vitamin D")


# --- precision and rounding ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "value", "unit", "shown"),
    [
        ("62292-8", 74, "nmol/L", "74 nmol/L (29.6 ng/mL)"),  # never "(30 ng/mL)" beside "below 30"
        ("62292-8", 49.9, "nmol/L", "49.9 nmol/L (19.99 ng/mL)"),  # 19.992: never "(20 ng/mL)"
        ("62292-8", 45, "nmol/L", "45 nmol/L (18 ng/mL)"),  # away from a cut-point: whole ng/mL
        ("2823-3", 3.0, "mmol/L", "3.0 mmol/L"),  # the laboratory's precision: never "3"
        ("2823-3", 3, "mmol/L", "3 mmol/L"),
        ("19123-9", 0.7, "mmol/L", "0.7 mmol/L (1.702 mg/dL)"),  # 1.7015: never "1.7" or "1.70" on the cut
    ],
)
async def test_shown_values_keep_precision_and_their_side_of_every_cut_point(
    client: httpx.AsyncClient, code: str, value: float, unit: str, shown: str
) -> None:
    vitamin_d = [obs(code, value, unit, "2026-11-20")] if code == "62292-8" else [obs("62292-8", 12, "ng/mL")]
    electrolytes = [obs(code, value, unit, "2026-11-20")] if code != "62292-8" else normal_electrolytes()
    found = await patient_view_cards(client, hook_request(vitamin_d, electrolytes, conditions=CRAMPS))
    assert any(shown in text(card) for card in found.values()), (shown, [text(c) for c in found.values()])


@pytest.mark.parametrize(
    ("code", "written", "shown"),
    [("19123-9", "1.20", "1.20 mg/dL"), ("1995-0", "1.10", "1.10 mmol/L"), ("2823-3", "3.40", "3.40 mmol/L")],
)
async def test_the_digits_the_laboratory_wrote_are_kept(
    client: httpx.AsyncClient, code: str, written: str, shown: str
) -> None:
    """JSON "1.20" is shown "1.20": the body is read with its numbers' written digits."""
    unit = "mmol/L" if code != "19123-9" else "mg/dL"
    low = obs(code, 0.5, unit, "2026-11-20", id="written")
    body = json.dumps(hook_request([obs("62292-8", 40, "ng/mL")], [low, *normal_electrolytes()[:1]]))
    body = body.replace('"value": 0.5', f'"value": {written}', 1)
    response = await client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert any(shown in text(card) for card in response.json()["cards"]), response.json()


@pytest.mark.parametrize("where", ["valueQuantity", "valueString"])
async def test_a_number_written_with_thousands_of_digits_is_shown_short(client: httpx.AsyncClient, where: str) -> None:
    """Hostile input: the digits as written are kept only as far as a laboratory writes them."""
    digits = "3.1" + "0" * 5000
    potassium = obs("2823-3", 0.5, "mmol/L", "2026-11-20", id="long")
    body = json.dumps(hook_request([obs("62292-8", 40, "ng/mL")], [potassium, *normal_electrolytes()[1:]]))
    written = digits if where == "valueQuantity" else f'"{digits} mmol/L"'
    target = (
        '"valueQuantity": {"value": 0.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}'
    )
    body = body.replace(target, f'"{where}": {written}' if where == "valueString" else target.replace("0.5", digits))
    response = await client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert "K 3.1 mmol/L low" in card["summary"] and len(card["detail"]) < 2000


async def test_a_default_range_is_written_as_laboratories_write_it(client: httpx.AsyncClient) -> None:
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], [obs("2823-3", 3.0, "mmol/L")] + normal_electrolytes()[1:])
    )
    assert "3.0 mmol/L on 2026-11-01; default range 3.5-5.0 mmol/L" in found["electrolytes-abnormal"]["detail"]


# --- censored values: read only on their own side of normal --------------------------------------


@pytest.mark.parametrize(
    ("value", "kinds"),
    [
        ("<5 ng/mL", ["vitd-deficient"]),
        ("<30 ng/mL", ["vitd-insufficient"]),  # low whatever its true value: at least insufficient
        (">120 ng/mL", ["vitd-high"]),
        (">150 ng/mL", ["vitd-high"]),
        (">5 ng/mL", []),  # could be anything above 5: nothing decided, the older 12 neither
        ("<150 ng/mL", []),
        ("<1000 ng/mL", []),
    ],
)
async def test_a_censored_25ohd_is_read_only_on_its_side_of_normal(
    client: httpx.AsyncClient, value: str, kinds: list[str]
) -> None:
    results = [obs("62292-8", when="2026-11-20", valueString=value), obs("62292-8", 12, "ng/mL", "2026-10-01")]
    found = await patient_view_cards(client, hook_request(results, normal_electrolytes()))
    assert sorted(found) == kinds


@pytest.mark.parametrize(
    ("value", "summary"),
    [
        ("<2.4 mmol/L", "Critical: K <2.4 mmol/L low"),
        ("<3.2 mmol/L", "K <3.2 mmol/L low"),
        (">6.5 mmol/L", "Critical: K >6.5 mmol/L high"),
        (">5.2 mmol/L", "K >5.2 mmol/L high"),
        ("<7 mmol/L", None),  # could be normal: not a critical high
        (">1.5 mmol/L", None),  # could be normal: not a critical low
    ],
)
async def test_a_censored_potassium_is_read_only_on_its_side_of_normal(
    client: httpx.AsyncClient, value: str, summary: str | None
) -> None:
    potassium = obs("2823-3", when="2026-11-20", valueString=value)
    found = await patient_view_cards(
        client, hook_request([obs("62292-8", 40, "ng/mL")], [potassium, *normal_electrolytes()[1:]])
    )
    if summary is None:
        assert "electrolytes-abnormal" not in found
    else:
        assert found["electrolytes-abnormal"]["summary"].startswith(summary)


@pytest.mark.parametrize(
    ("written", "summary"),
    [
        ("19.999999999999996", "25(OH)D 19.999999999999996 ng/mL on 2026-11-20: vitamin D deficient"),
        ("19.99999999999999999999", None),  # more digits than a float holds: not judged on a rounding
        ("0." + "0" * 400 + "14", None),  # too small for a float: no value
    ],
)
async def test_a_long_written_number_is_judged_as_written_or_not_at_all(
    client: httpx.AsyncClient, written: str, summary: str | None
) -> None:
    vitamin_d = obs("62292-8", 0.5, "ng/mL", "2026-11-20")
    body = json.dumps(hook_request([vitamin_d, obs("62292-8", 45, "ng/mL", "2026-10-01")], normal_electrolytes()))
    response = await client.post(URL, content=body.replace('"value": 0.5', f'"value": {written}', 1),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    cards_found = response.json()["cards"]
    if summary is None:
        assert cards_found == []  # unreadable and newest: the older 45 does not decide either
    else:
        assert cards_found[0]["summary"].startswith(summary)


@pytest.mark.parametrize("order", ["final-first", "corrected-first"])
async def test_one_resource_id_sent_twice_is_its_standing_version(client: httpx.AsyncClient, order: str) -> None:
    """The same id as `final` 14 and `corrected` 160: the correction stands, whichever comes first
    (rulebook, "Corrections and ties")."""
    first = obs("62292-8", 14, "ng/mL", WHEN, id="same")
    second = obs("62292-8", 160, "ng/mL", WHEN, id="same", status="corrected")
    results = [first, second] if order == "final-first" else [second, first]
    found = await patient_view_cards(client, hook_request(results, normal_electrolytes()))
    assert list(found) == ["vitd-high"] and "160 ng/mL" in found["vitd-high"]["summary"]
    assert "14 ng/mL" not in text(found["vitd-high"])


@pytest.mark.parametrize("field", ["effectiveDateTime", "issued"])
async def test_a_date_utc_cannot_hold_is_a_skipped_resource_not_a_500(client: httpx.AsyncClient, field: str) -> None:
    """From an attack run: 0001-01-01T00:00:00+14:00 gave every service a 500."""
    odd = obs("62292-8", 12, "ng/mL", None if field == "issued" else "0001-01-01T00:00:00+14:00", id="odd")
    odd |= {"issued": "0001-01-01T00:00:00+14:00"}
    request = hook_request([odd, obs("62292-8", 14, "ng/mL", "2026-11-20")], normal_electrolytes())
    found = await patient_view_cards(client, request)
    assert list(found) == ["vitd-deficient"] and "14 ng/mL" in found["vitd-deficient"]["summary"]
    order = order_request(
        [medication("Vit D 1000 units", status="draft", id="mr-1")], vitamin_d=[odd], electrolytes=normal_electrolytes()
    )
    assert (await client.post("/cds-services/vitamin-d-order-sign", json=order)).status_code == 200
