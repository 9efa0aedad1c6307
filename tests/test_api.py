"""The HTTP interface through httpx's ASGI transport: discovery, every card kind, and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from cds_service.app import create_app
from cds_service.settings import Settings
from tests.builders import UCUM, bundle, condition, hook_request, medication, normal_electrolytes, obs, pending_order
from tests.conftest import AppFactory, make_client

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"


def kinds(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


def card(response: httpx.Response, kind: str) -> dict[str, Any]:
    (found,) = [c for c in response.json()["cards"] if c["source"]["topic"]["code"] == kind]
    return found


def outcome(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    return issue


# --- discovery ----------------------------------------------------------------------------------


async def test_discovery(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services")
    assert response.status_code == 200
    services = response.json()["services"]
    assert [(s["id"], s["hook"]) for s in services] == [
        ("vitamin-d-cramps", "patient-view"),
        ("vitamin-d-order-select", "order-select"),
        ("vitamin-d-order-sign", "order-sign"),
    ]
    service = services[0]
    assert service["title"] and service["description"]
    prefetch = service["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    for code in ["62292-8", "1989-3", "14635-7", "62290-2", "1649-3"]:  # status codes and wrong-test codes
        assert f"http://loinc.org|{code}" in prefetch["vitaminD"]
    for code in ["2823-3", "19123-9", "17861-6", "1995-0", "29265-6", "1751-7"]:
        assert f"http://loinc.org|{code}" in prefetch["electrolytes"]
    for key in ("vitaminD", "electrolytes"):
        assert prefetch[key].startswith("Observation?patient={{context.patientId}}&code=")
        assert "_sort=-date" in prefetch[key] and "_count=" in prefetch[key]
    assert prefetch["conditions"].startswith("Condition?patient={{context.patientId}}")
    assert prefetch["medications"].startswith("MedicationRequest?patient={{context.patientId}}&status=active")
    pending = prefetch["pendingOrders"]
    assert pending.startswith("ServiceRequest?patient={{context.patientId}}&status=active&code=")
    for code in ["24321-2", "19123-9", "17861-6", "62292-8"]:  # the tests that suggestions order
        assert f"http://loinc.org|{code}" in pending
    for order_service in services[1:]:
        assert order_service["title"] and order_service["description"]
        # Revision 2026-12-07 (vitd-order-1-25): no 25(OH)D is drafted in place of a 1,25-D order when
        # one is pending, so the order services read the pending orders too.
        assert set(order_service["prefetch"]) == {
            "vitaminD",
            "electrolytes",
            "conditions",
            "medications",
            "pendingOrders",
        }
        assert "draftOrders" not in str(order_service["prefetch"])  # read from the context, never prefetched


# --- each card kind -----------------------------------------------------------------------------


async def test_deficient_with_recent_electrolytes(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, json=hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10")], normal_electrolytes())
    )
    assert kinds(response) == ["vitd-deficient"]
    c = card(response, "vitd-deficient")
    assert c["indicator"] == "warning"
    assert "12 ng/mL" in c["summary"] and "2026-11-10" in c["summary"]
    assert "62292-8" in c["detail"] and "None of the sources cited here shows that vitamin D relieves" in c["detail"]
    assert {r["code"] for r in c["overrideReasons"]} == {
        "already-addressed",
        "outside-result",
        "not-relevant",
        "patient-declined",
    }
    assert "suggestions" not in c  # no suggestion that prescribes


CRAMPS = [condition("R25.2")]
FUROSEMIDE = [medication("furosemide 20 MG Oral Tablet")]


def ordered(check: dict[str, Any]) -> list[str]:
    return [s["actions"][0]["resource"]["code"]["coding"][0]["code"] for s in check["suggestions"]]


async def test_insufficient_without_cramps_suggests_no_check(client: httpx.AsyncClient) -> None:
    """Rulebook, "Which electrolytes to check": an insufficient level alone is no reason."""
    response = await client.post(URL, json=hook_request([obs("62292-8", 25, "ng/mL")], None))
    assert kinds(response) == ["vitd-insufficient"]


# Which electrolytes to suggest, and which tests cover them: K and Ca by the basic metabolic panel,
# Mg alone, Ca alone when potassium is not wanted.
@pytest.mark.parametrize(
    ("vitamin_d", "recent", "conditions", "medications", "codes"),
    [
        (12, [], [], [], ["17861-6"]),  # deficient: calcium alone
        (12, [], [], FUROSEMIDE, ["24321-2", "19123-9"]),  # deficient on a loop diuretic: K, Mg and Ca
        (12, ["17861-6"], [], [], None),  # deficient, calcium recent: nothing to check
        (12, ["17861-6"], [], FUROSEMIDE, ["24321-2", "19123-9"]),  # K needs the panel, whose Ca is recent
        (12, ["2823-3", "19123-9"], [], FUROSEMIDE, ["17861-6"]),
        (25, [], CRAMPS, [], ["24321-2", "19123-9"]),  # cramps: every electrolyte missing
        (25, ["2823-3", "17861-6"], CRAMPS, [], ["19123-9"]),
        (25, ["2823-3", "19123-9"], CRAMPS, [], ["17861-6"]),
        (40, ["19123-9", "17861-6"], CRAMPS, [], ["24321-2"]),  # potassium alone: the panel
        (40, [], [], FUROSEMIDE, None),  # sufficient, no cramps: no check
        (25, [], [], FUROSEMIDE, None),  # insufficient, no cramps: no check
    ],
)
async def test_which_electrolytes_to_suggest(
    client: httpx.AsyncClient,
    vitamin_d: float,
    recent: list[str],
    conditions: list[dict[str, Any]],
    medications: list[dict[str, Any]],
    codes: list[str] | None,
) -> None:
    units = {"2823-3": (4.2, "mmol/L"), "19123-9": (2.0, "mg/dL"), "17861-6": (9.4, "mg/dL")}
    electrolytes = [obs(code, *units[code]) for code in recent]
    request = hook_request(
        [obs("62292-8", vitamin_d, "ng/mL")], electrolytes, conditions=conditions, medications=medications
    )
    response = await client.post(URL, json=request)
    if codes is None:
        assert "electrolytes-check" not in kinds(response)
        return
    check = card(response, "electrolytes-check")
    assert check["indicator"] == "info" and check["selectionBehavior"] == "any"
    assert ordered(check) == codes


@pytest.mark.parametrize(
    ("pending", "codes", "said"),
    [
        (["24321-2"], ["19123-9"], "Already ordered and pending: potassium and calcium"),
        (["19123-9"], ["24321-2"], "Already ordered and pending: magnesium"),
        (["17861-6"], ["24321-2", "19123-9"], "Already ordered and pending: calcium"),  # the panel is for K
        (["24321-2", "19123-9"], None, None),  # everything wanted is on order: no card
    ],
)
async def test_a_pending_order_is_never_suggested_again(
    client: httpx.AsyncClient, pending: list[str], codes: list[str] | None, said: str | None
) -> None:
    request = hook_request(
        [obs("62292-8", 25, "ng/mL")], [], conditions=CRAMPS, pending_orders=[pending_order(c) for c in pending]
    )
    response = await client.post(URL, json=request)
    if codes is None:
        assert kinds(response) == ["vitd-insufficient"]
        return
    check = card(response, "electrolytes-check")
    assert ordered(check) == codes and said in check["detail"]


@pytest.mark.parametrize("status", ["completed", "revoked", "draft", "entered-in-error"])
async def test_only_an_active_order_is_pending(client: httpx.AsyncClient, status: str) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], [], pending_orders=[pending_order("17861-6", status=status)])
    assert ordered(card(await client.post(URL, json=request), "electrolytes-check")) == ["17861-6"]


async def test_another_patients_pending_order_is_ignored(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], [], pending_orders=[pending_order("17861-6", patient="p2")])
    assert ordered(card(await client.post(URL, json=request), "electrolytes-check")) == ["17861-6"]


@pytest.mark.parametrize(
    ("potassium", "problem"),
    [
        ({"valueQuantity": {"value": 0.7, "unit": "g/dL", "system": UCUM, "code": "g/dL"}}, "unit g/dL not recognised"),
        ({"valueString": "Blank"}, "text, not a value"),
        # Revision 2026-12-07 (Values): a unitless potassium is read (mmol/L = meq/L), so a unit
        # that is none of potassium's stands for the unreadable text here.
        ({"valueString": "4.0 mEq"}, "unit mEq not recognised"),
    ],
)
async def test_an_unreadable_recent_result_counts_as_missing_and_is_named(
    client: httpx.AsyncClient, potassium: dict[str, Any], problem: str
) -> None:
    """Never "not checked": the latest potassium exists and could not be interpreted."""
    electrolytes = [
        obs("2823-3", when="2026-11-20", **potassium),
        obs("19123-9", 2.0, "mg/dL"),
        obs("17861-6", 9.4, "mg/dL"),
    ]
    request = hook_request([obs("62292-8", 40, "ng/mL")], electrolytes, conditions=CRAMPS)
    check = card(await client.post(URL, json=request), "electrolytes-check")
    assert ordered(check) == ["24321-2"]
    assert "latest potassium unreadable" in check["summary"] and "not checked" not in check["summary"]
    assert f"could not be interpreted: {problem}" in check["detail"] and "no result" not in check["detail"]


@pytest.mark.parametrize(("value", "indicator"), [(120, "warning"), (151, "critical")])
async def test_high(client: httpx.AsyncClient, value: float, indicator: str) -> None:
    response = await client.post(URL, json=hook_request([obs("62292-8", value, "ng/mL")], None))
    assert kinds(response) == ["vitd-high"]
    assert card(response, "vitd-high")["indicator"] == indicator


async def test_wrong_test(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request([obs("1649-3", 60, "pg/mL")], normal_electrolytes()))
    assert kinds(response) == ["vitd-wrong-test"]
    c = card(response, "vitd-wrong-test")
    assert c["indicator"] == "info" and "62292-8" in c["detail"]
    assert any("medlineplus" in link["url"] for link in c["links"])
    assert "| 60 pg/mL |" in c["detail"] and "not classified" not in c["detail"]  # its value and unit


async def test_a_1_25_result_in_pmol_is_shown_as_reported_then_in_pg(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request([obs("62290-2", 125, "pmol/L")], normal_electrolytes()))
    assert "| 125 pmol/L (52 pg/mL) |" in card(response, "vitd-wrong-test")["detail"]


async def test_an_unreadable_25ohd_is_a_25ohd_result(client: httpx.AsyncClient) -> None:
    """No wrong-test card saying there is no 25(OH)D when one exists and could not be read."""
    request = hook_request([obs("1649-3", 60, "pg/mL"), obs("62292-8", 20, "IU")], normal_electrolytes())
    assert kinds(await client.post(URL, json=request)) == []


@pytest.mark.parametrize(
    ("code", "value", "unit", "shown"),
    [
        ("62292-8", 45, "nmol/L", "45 nmol/L (18 ng/mL)"),  # 25(OH)D in whole ng/mL
        ("62292-8", 12.5, "ng/mL", "12.5 ng/mL"),  # as reported, digits kept
        ("19123-9", 1.2, "meq/L", "1.2 meq/L (1.5 mg/dL)"),  # magnesium to one decimal
        # Revision 2026-12-07 (Units): as reported at the laboratory's precision (2.0), then converted.
        ("2000-8", 2.0, "mmol/L", "2.0 mmol/L (8.0 mg/dL)"),  # calcium to one decimal
        ("1995-0", 4.4, "mg/dL", "4.4 mg/dL (1.10 mmol/L)"),  # ionized calcium to two
    ],
)
async def test_the_laboratory_value_first_then_converted_and_rounded(
    client: httpx.AsyncClient, code: str, value: float, unit: str, shown: str
) -> None:
    electrolytes = [obs(code, value, unit)] if code != "62292-8" else normal_electrolytes()
    vitamin_d = [obs(code, value, unit)] if code == "62292-8" else [obs("62292-8", 12, "ng/mL")]
    response = await client.post(URL, json=hook_request(vitamin_d, electrolytes, conditions=CRAMPS))
    assert any(f"| {shown} |" in c["detail"] for c in response.json()["cards"]), shown


async def test_electrolytes_abnormal_names_value_and_range(client: httpx.AsyncClient) -> None:
    electrolytes = [obs("2823-3", 3.1, "mmol/L"), obs("19123-9", 1.4, "meq/L"), obs("17861-6", 9.4, "mg/dL")]
    response = await client.post(URL, json=hook_request([obs("62292-8", 40, "ng/mL")], electrolytes))
    assert kinds(response) == ["electrolytes-abnormal"]
    c = card(response, "electrolytes-abnormal")
    assert c["indicator"] == "warning"
    assert "K 3.1 mmol/L low" in c["summary"]
    assert "Mg" not in c["summary"]  # 1.4 meq/L is 1.70 mg/dL: in range
    # Revision 2026-12-07 (Units): a range 3.5-5.0 shows "3.5-5.0".
    assert "3.5-5.0 mmol/L" in c["detail"] and "muscle cramps" not in c["detail"]  # no cramps documented


async def test_critical_electrolyte(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request(None, [obs("2823-3", 6.8, "mmol/L")]))
    assert kinds(response) == ["electrolytes-abnormal"]
    assert card(response, "electrolytes-abnormal")["indicator"] == "critical"


async def test_cards_come_most_severe_first(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 25, "ng/mL")], [obs("2823-3", 2.2, "mmol/L")], conditions=CRAMPS)
    assert kinds(await client.post(URL, json=request)) == [
        "electrolytes-abnormal",
        "vitd-insufficient",
        "electrolytes-check",
    ]


async def test_nmol_input_is_converted_and_said(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request([obs("62292-8", 45, "nmol/L")], normal_electrolytes()))
    c = card(response, "vitd-deficient")
    assert "45 nmol/L (18 ng/mL)" in c["summary"]  # the laboratory's unit first, then whole ng/mL
    assert "| 45 nmol/L (18 ng/mL) |" in c["detail"]


async def test_unknown_status_is_said_in_the_card(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, json=hook_request([obs("1989-3", 12, "ng/mL", status="unknown")], normal_electrolytes())
    )
    detail = card(response, "vitd-deficient")["detail"]
    assert "did not report the result's status" in detail and "D3-only code" in detail and "1989-3" in detail


async def test_normal_patient_gets_no_card(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request([obs("62292-8", 42, "ng/mL")], normal_electrolytes()))
    assert response.json() == {"cards": []}


async def test_another_patients_results_are_ignored(client: httpx.AsyncClient) -> None:
    response = await client.post(
        URL, json=hook_request([obs("62292-8", 8, "ng/mL", patient="p2")], normal_electrolytes())
    )
    assert kinds(response) == []


async def test_malformed_resource_is_skipped(client: httpx.AsyncClient) -> None:
    broken = obs("62292-8", 8, "ng/mL", "2026-11-20") | {"status": 7}  # malformed where no result can be made
    response = await client.post(
        URL, json=hook_request([broken, obs("62292-8", 25, "ng/mL", "2026-11-01")], normal_electrolytes())
    )
    assert kinds(response) == ["vitd-insufficient"]


async def test_a_malformed_value_is_an_unreadable_result(client: httpx.AsyncClient) -> None:
    """Revision 2026-12-07 ("Not interpretable is not absent"; rulebook, "Unreadable results"): a
    newer 25(OH)D whose value is malformed ("eight", 1e999 in JSON) was skipped, and the older 25
    ng/mL then decided; it is a result that could not be read, and nothing older decides past it."""
    for value in ("eight", True, {"x": 1}):
        broken = obs("62292-8", 8, "ng/mL", "2026-11-20") | {"valueQuantity": {"value": value}}
        request = hook_request([broken, obs("62292-8", 25, "ng/mL", "2026-11-01")], normal_electrolytes())
        assert kinds(await client.post(URL, json=request)) == [], value
    body = json.dumps(
        hook_request(
            [obs("62292-8", 0.5, "ng/mL", "2026-11-20"), obs("62292-8", 25, "ng/mL", "2026-11-01")],
            normal_electrolytes(),
        )
    )
    response = await client.post(
        URL, content=body.replace('"value": 0.5', '"value": 1e999'), headers={"Content-Type": "application/json"}
    )
    assert kinds(response) == []


# --- profiles -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "value", "expected"),
    [
        ("endocrine-2011", 15, ["vitd-deficient"]),
        ("iom-2011", 15, ["vitd-insufficient"]),
        ("endocrine-2011", 25, ["vitd-insufficient"]),
        ("iom-2011", 25, []),
        ("iom-2011", 11, ["vitd-deficient"]),
    ],
)
async def test_threshold_profiles(make_app: AppFactory, profile: str, value: float, expected: list[str]) -> None:
    async with make_client(make_app(threshold_profile=profile)) as c:
        response = await c.post(URL, json=hook_request([obs("62292-8", value, "ng/mL")], normal_electrolytes()))
    assert kinds(response) == expected
    if profile == "iom-2011" and expected == ["vitd-insufficient"]:
        assert "inadequate" in response.json()["cards"][0]["summary"]


async def test_iom_high_card_mentions_no_added_benefit(make_app: AppFactory) -> None:
    async with make_client(make_app(threshold_profile="iom-2011")) as c:
        response = await c.post(URL, json=hook_request([obs("62292-8", 110, "ng/mL")], None))
    assert "no added benefit above 50" in card(response, "vitd-high")["detail"]


async def test_opt_in_codes_setting(make_app: AppFactory) -> None:
    request = hook_request([obs("49054-0", 12, "ng/mL")], normal_electrolytes())
    async with make_client(make_app()) as c:
        assert kinds(await c.post(URL, json=request)) == []
    async with make_client(make_app(vitd_opt_in_codes=True)) as c:
        assert kinds(await c.post(URL, json=request)) == ["vitd-deficient"]


def test_profile_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_THRESHOLD_PROFILE", "iom-2011")
    monkeypatch.setenv("CDS_AUTH", "off")
    assert Settings().threshold_profile == "iom-2011"
    create_app()  # loads and accepts it


# --- prefetch: null and missing -----------------------------------------------------------------


async def test_null_prefetch_means_nothing_there(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, json=hook_request(None, None))
    assert response.status_code == 200 and response.json() == {"cards": []}


@pytest.mark.parametrize(
    ("prefetch", "missing"),
    [
        (None, ["prefetch.vitaminD"]),
        ({"electrolytes": None}, ["prefetch.vitaminD"]),
        ({"electrolytes": None, "vitaminD": {"resourceType": "OperationOutcome", "issue": []}}, ["prefetch.vitaminD"]),
    ],
)
async def test_missing_prefetch_is_412(
    client: httpx.AsyncClient, prefetch: dict[str, Any] | None, missing: list[str]
) -> None:
    request = hook_request()
    if prefetch is None:
        del request["prefetch"]
    else:
        request["prefetch"] = prefetch
    response = await client.post(URL, json=request)
    assert response.status_code == 412
    issue = outcome(response)
    assert issue["expression"] == missing
    for key in missing:
        assert key.removeprefix("prefetch.") in issue["diagnostics"]


async def test_patient_key_is_not_required(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())
    del request["prefetch"]["patient"]
    assert kinds(await client.post(URL, json=request)) == ["vitd-deficient"]


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda r: r.pop("hookInstance"), "hookInstance"),
        (lambda r: r.update(hookInstance="not-a-uuid"), "hookInstance"),
        (lambda r: r.pop("context"), "context"),
        (lambda r: r["context"].pop("patientId"), "context.patientId"),
        (lambda r: r["context"].update(patientId=7), "context.patientId"),
        (lambda r: r.update(hook="order-sign"), "hook"),
        (lambda r: r.update(hook="<img src=x onerror=alert(1)>"), "hook"),
        (
            lambda r: r.update(
                fhirAuthorization={
                    "access_token": "secret-token",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "scope": "x",
                    "subject": "y",
                }
            ),
            "fhirAuthorization",
        ),
        (lambda r: r.update(fhirServer="not a url"), "fhirServer"),
        (lambda r: r["prefetch"].update(vitaminD=[1, 2]), "prefetch.vitaminD"),
        (
            lambda r: r["prefetch"].update(electrolytes={"resourceType": "Bundle", "entry": "x"}),
            "prefetch.electrolytes.entry",
        ),
    ],
)
async def test_invalid_requests_are_400_naming_the_field(client: httpx.AsyncClient, mutate: Any, field: str) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], None)
    mutate(request)
    response = await client.post(URL, json=request)
    assert response.status_code == 400
    issue = outcome(response)
    assert issue["expression"] == [field]
    assert "secret-token" not in response.text and "onerror" not in response.text  # no input echoed


@pytest.mark.parametrize("body", [b"{not json", b"[]", b'"text"', b""])
async def test_body_not_a_json_object_is_400(client: httpx.AsyncClient, body: bytes) -> None:
    response = await client.post(URL, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and outcome(response)["code"] == "invalid"


async def test_unknown_service_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/cds-services/no-such-service", json=hook_request(None, None))
    assert response.status_code == 404 and outcome(response)["code"] == "not-found"


async def test_body_over_the_limit_is_413(make_app: AppFactory) -> None:
    big = hook_request([obs("62292-8", 12, "ng/mL", note=[{"text": "x" * 4000}])], None)
    async with make_client(make_app(max_body_bytes=2000)) as c:
        response = await c.post(URL, json=big)
        assert response.status_code == 413 and outcome(response)["code"] == "too-costly"

        async def chunks():  # no Content-Length: the limit holds on the bytes received
            yield b'{"hook": "patient-view", "pad": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        response = await c.post(URL, content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 413


async def test_default_body_limit_is_5_mb(client: httpx.AsyncClient) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL")], normal_electrolytes())
    request["pad"] = "x" * (5 * 1024 * 1024 - 2000)
    assert (await client.post(URL, json=request)).status_code == 200
    request["pad"] = "x" * (5 * 1024 * 1024 + 1)
    assert (await client.post(URL, json=request)).status_code == 413


async def test_a_bug_is_500_without_a_stack_trace(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from cds_service.services.vitamin_d_cramps import VitaminDCramps

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("boom for Patient/p1")

    monkeypatch.setattr(VitaminDCramps, "decide", broken)
    request = hook_request([obs("62292-8", 12, "ng/mL")], None)
    async with make_client(make_app()) as c:
        response = await c.post(URL, json=request)
    assert response.status_code == 500
    assert outcome(response)["code"] == "exception"
    assert "Traceback" not in response.text and "boom" not in response.text and "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert logged and logged[0].hookInstance == request["hookInstance"]
    assert all("p1" not in r.getMessage() and "p1" not in str(vars(r).get("at")) for r in caplog.records)


async def test_log_lines_carry_no_patient_data(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="cds_service")
    pid = "patient-8675309"
    request = hook_request(
        [obs("62292-8", 12.3, "ng/mL", patient=pid)], [obs("2823-3", 4.2, "mmol/L", patient=pid)], patient=pid
    )
    await client.post(URL, json=request)
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    fields = {k: v for k, v in vars(line).items()}
    assert fields["hookInstance"] == request["hookInstance"] and fields["status"] == 200
    assert fields["cards"] == "vitd-deficient,electrolytes-check"
    text = repr(fields)
    assert "8675309" not in text and "12.3" not in text


async def test_recency_follows_the_clock(make_app: AppFactory) -> None:
    request = hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10")], normal_electrolytes("2026-11-10"))
    async with make_client(make_app(as_of=datetime(2027, 11, 20, tzinfo=UTC))) as c:
        assert kinds(await c.post(URL, json=request)) == []  # a year and ten days later: too old
    async with make_client(make_app(as_of=datetime(2026, 11, 1, tzinfo=UTC))) as c:
        assert kinds(await c.post(URL, json=request)) == []  # before the results existed


async def test_bundle_helper_shapes(client: httpx.AsyncClient) -> None:
    """A prefetch value may be a single resource as well as a Bundle."""
    request = hook_request(prefetch={"vitaminD": obs("62292-8", 12, "ng/mL"), "electrolytes": bundle()})
    assert kinds(await client.post(URL, json=request)) == ["vitd-deficient", "electrolytes-check"]


# --- CORS -------------------------------------------------------------------------------------------


async def test_cors_preflight_needs_no_token(make_app: AppFactory, tmp_path: Any) -> None:
    issuers = tmp_path / "issuers.yaml"
    key = {
        "kty": "EC",
        "crv": "P-256",
        "kid": "k",
        "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
        "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
    }
    issuers.write_text(json.dumps({"issuers": [{"iss": "https://a.example", "jwks": {"keys": [key]}}]}))
    app = make_app(
        auth="jwt",
        public_base_url="http://cds.test",
        trusted_issuers_file=issuers,
        cors_origins=["https://sandbox.cds-hooks.org"],
    )
    async with make_client(app) as c:
        preflight = await c.options(
            URL,
            headers={
                "Origin": "https://sandbox.cds-hooks.org",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
        assert "POST" in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
        refused = await c.post(URL, json=hook_request(None, None), headers={"Origin": "https://sandbox.cds-hooks.org"})
        assert refused.status_code == 401  # the call itself still needs its JWT
        assert refused.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
        other = await c.options(
            URL, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        assert "access-control-allow-origin" not in other.headers


async def test_no_cors_headers_by_default(client: httpx.AsyncClient) -> None:
    response = await client.get("/cds-services", headers={"Origin": "https://sandbox.cds-hooks.org"})
    assert "access-control-allow-origin" not in response.headers


def test_cors_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_CORS_ORIGINS", "https://a.example, https://b.example")
    assert Settings().cors_origins == ["https://a.example", "https://b.example"]


async def test_an_unreadable_repeat_never_hides_the_critical_result_before_it(client: httpx.AsyncClient) -> None:
    electrolytes = [
        obs("2823-3", when="2026-11-24", valueString="Blank"),  # the repeat: no value
        obs("2823-3", 6.5, "mmol/L", "2026-11-18"),
        obs("19123-9", 2.0, "mg/dL"),
        obs("17861-6", 9.4, "mg/dL"),
    ]
    response = await client.post(URL, json=hook_request([obs("62292-8", 40, "ng/mL")], electrolytes))
    c = card(response, "electrolytes-abnormal")
    assert c["indicator"] == "critical" and c["summary"].startswith("Critical: K 6.5 mmol/L high on 2026-11-18")
    assert "A newer potassium, serum/plasma (2026-11-24) could not be interpreted (text, not a value)" in c["detail"]
    assert "not the current state" in c["detail"]


async def test_an_unreadable_repeat_never_hides_a_very_high_25ohd(client: httpx.AsyncClient) -> None:
    vitamin_d = [obs("62292-8", 200, when="2026-11-20"), obs("62292-8", 180, "ng/mL", "2026-10-20")]  # no unit
    c = card(await client.post(URL, json=hook_request(vitamin_d, normal_electrolytes())), "vitd-high")
    assert c["indicator"] == "critical" and "180 ng/mL on 2026-10-20" in c["summary"]
    assert (
        "could not be interpreted (no unit): this is the latest readable result, not the current state" in c["detail"]
    )


async def test_a_trailing_slash_is_not_redirected_to_the_host_the_client_named(client: httpx.AsyncClient) -> None:
    """A 307 to a Location built from the Host header would make the client re-send the body
    (patient data) to that host: a trailing slash is simply no route."""
    answer = await client.post(
        "/cds-services/vitamin-d-cramps/", json=hook_request([]), headers={"Host": "evil.example"}
    )
    assert answer.status_code == 404 and "location" not in answer.headers
