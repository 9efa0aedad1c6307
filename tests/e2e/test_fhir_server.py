"""End to end over real HTTP: the service, called without prefetch, reads a real FHIR server and
gives the same cards as when the EHR prefetches the same data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.builders import obs
from tests.conftest import AppFactory, make_client
from tests.e2e.conftest import (
    FhirServer,
    load,
    medication_by_reference,
    start_fhir_server,
    transaction,
    written_patients,
)
from tests.rules import without_uuids
from tests.test_smart_samples import prefetch_like_an_ehr, run_query

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"

CASES = [
    ("smart-8888801", "2014-12-01", ["vitd-insufficient"]),
    ("smart-8888803", "2015-05-15", ["vitd-deficient"]),
    ("smart-8888803", "2015-08-15", ["vitd-deficient", "electrolytes-check"]),
    ("smart-8888803", "2016-07-01", []),  # calcium 8.7 with albumin 4.2: in range, never corrected down
    ("smart-8888804", "2015-11-15", []),
    ("e2e-nmol", "2026-11-25", ["vitd-deficient", "electrolytes-abnormal", "electrolytes-check"]),
    ("e2e-ionized", "2026-11-25", ["electrolytes-abnormal"]),
    ("e2e-payne", "2026-11-25", ["electrolytes-abnormal"]),
    ("e2e-many", "2026-11-25", ["electrolytes-abnormal", "vitd-insufficient"]),
    ("e2e-cramps", "2026-11-25", ["electrolytes-check"]),
]


def request(
    patient: str, server: FhirServer | None, prefetch: dict[str, Any] | None, token: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/e2e", "patientId": patient},
    }
    if prefetch is not None:
        body["prefetch"] = prefetch
    if server is not None:
        body["fhirServer"] = server.base
        body["fhirAuthorization"] = {
            "access_token": token or server.token,
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "patient/*.read",
            "subject": "cds-service",
        }
    return body


def local_prefetch(patient: str, templates: dict[str, str]) -> dict[str, Any]:
    if patient.startswith("smart-"):
        return prefetch_like_an_ehr(templates, patient.removeprefix("smart-"))
    resources = written_patients()[patient]
    return {key: run_query(t, resources) for key, t in templates.items() if "?" in t}


def app_at(make_app: AppFactory, as_of: str) -> Any:
    return make_app(as_of=datetime.fromisoformat(as_of).replace(tzinfo=UTC), fhir_allow_insecure=True)


@pytest.mark.parametrize(("patient", "as_of", "expected"), CASES)
async def test_fetched_equals_prefetched(
    make_app: AppFactory, fhir_server: FhirServer, patient: str, as_of: str, expected: list[str]
) -> None:
    async with make_client(app_at(make_app, as_of)) as client:
        templates = (await client.get("/cds-services")).json()["services"][0]["prefetch"]
        fetched = await client.post(URL, json=request(patient, fhir_server, None))
        prefetched = await client.post(URL, json=request(patient, None, local_prefetch(patient, templates)))
    assert [c["source"]["topic"]["code"] for c in fetched.json()["cards"]] == expected
    assert prefetched.status_code == 200
    assert without_uuids(fetched.json()) == without_uuids(prefetched.json())


async def test_paging_reads_past_the_first_page(
    make_app: AppFactory, fhir_server: FhirServer, caplog: pytest.LogCaptureFixture
) -> None:
    """e2e-many has 152 electrolyte results for a page size of 100: both pages are read (the 150
    potassium results older than the recent window are counted, and left unread)."""
    caplog.set_level("INFO", logger="cds_service")
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        response = await client.post(URL, json=request("e2e-many", fhir_server, None))
    assert response.status_code == 200
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    assert (line.results, line.old) == (
        2,
        150,
    ) and line.fetched == "patient,vitaminD,electrolytes,conditions,medications,pendingOrders"


async def test_partial_prefetch(make_app: AppFactory, fhir_server: FhirServer) -> None:
    """The Patient is given, the Observations are fetched."""
    prefetch = {"patient": {"resourceType": "Patient", "id": "e2e-nmol"}}
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        response = await client.post(URL, json=request("e2e-nmol", fhir_server, prefetch))
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == [
        "vitd-deficient",
        "electrolytes-abnormal",
        "electrolytes-check",
    ]


async def test_a_token_the_server_rejects_is_412(make_app: AppFactory, fhir_server: FhirServer) -> None:
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        response = await client.post(URL, json=request("e2e-nmol", fhir_server, None, token="wrong-token"))
    assert response.status_code == 412
    assert "HTTP 401" in response.json()["issue"][0]["diagnostics"]
    assert "wrong-token" not in response.text


async def test_without_insecure_a_loopback_server_is_refused(make_app: AppFactory, fhir_server: FhirServer) -> None:
    async with make_client(make_app()) as client:
        response = await client.post(URL, json=request("e2e-nmol", fhir_server, None))
    assert response.status_code == 412 and "refused" in response.json()["issue"][0]["diagnostics"]


async def test_the_fhir_server_stopped_mid_suite(make_app: AppFactory, tmp_path: Path) -> None:
    server = start_fhir_server(tmp_path)
    try:
        load(server, transaction({"resourceType": "Patient", "id": "e2e-nmol"}, *written_patients()["e2e-nmol"]))
        async with make_client(app_at(make_app, "2026-11-25")) as client:
            assert (await client.post(URL, json=request("e2e-nmol", server, None))).status_code == 200
            server.stop()
            response = await client.post(URL, json=request("e2e-nmol", server, None))
            assert response.status_code == 412
            assert "connection error" in response.json()["issue"][0]["diagnostics"]
            # partial prefetch: vitamin D given, electrolytes unreachable -> 200 and the card says so
            prefetch = local_prefetch("e2e-nmol", (await client.get("/cds-services")).json()["services"][0]["prefetch"])
            del prefetch["electrolytes"]
            response = await client.post(URL, json=request("e2e-nmol", server, prefetch))
            assert response.status_code == 200
            (card,) = response.json()["cards"]
            assert "could not be read" in card["detail"]
    finally:
        if server.process.poll() is None:
            server.stop()


async def test_the_context_comes_from_the_server(make_app: AppFactory, fhir_server: FhirServer) -> None:
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        response = await client.post(URL, json=request("e2e-cramps", fhir_server, None))
    (card,) = response.json()["cards"]
    assert card["summary"].startswith("Leg cramps documented: magnesium and calcium not checked")
    assert "Leg cramps are documented (R25.2);" in card["detail"]
    assert (
        "Other documented causes of cramps: chronic kidney disease." in card["detail"]
    )  # not the resolved dehydration
    assert "furosemide (loop diuretic)." in card["detail"]  # not the stopped statin


@pytest.mark.parametrize("hook", ["order-select", "order-sign"])
async def test_order_hooks_without_prefetch(make_app: AppFactory, fhir_server: FhirServer, hook: str) -> None:
    drafts = [
        {
            "resourceType": "ServiceRequest",
            "id": "draft-25",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62292-8"}]},
            "subject": {"reference": "Patient/e2e-nmol"},
        },
        {
            "resourceType": "ServiceRequest",
            "id": "draft-125",
            "status": "draft",
            "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": "62290-2"}]},
            "subject": {"reference": "Patient/e2e-nmol"},
        },
    ]
    body = request("e2e-nmol", fhir_server, None)
    body["hook"] = hook
    body["context"]["draftOrders"] = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": d} for d in drafts],
    }
    if hook == "order-select":
        body["context"]["selections"] = ["ServiceRequest/draft-25", "ServiceRequest/draft-125"]
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        response = await client.post(f"/cds-services/vitamin-d-{hook}", json=body)
    assert response.status_code == 200, response.text
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert set(cards) == {"vitd-duplicate-order", "vitd-order-1-25"}
    assert "15 days ago" in cards["vitd-duplicate-order"]["summary"]  # 2026-11-10, read from the server
    assert "could not be read" not in cards["vitd-order-1-25"]["detail"]  # the conditions were read


async def test_medicines_named_only_by_reference_are_read_from_the_server(
    make_app: AppFactory, fhir_server: FhirServer
) -> None:
    """Epic: the active list and a draft order name their drugs only as Medication/<id>: patient-view
    names the furosemide, and order-sign cautions the vitamin D drafted while 25(OH)D is very high."""
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        seen = await client.post(URL, json=request("e2e-epic", fhir_server, None))
        assert seen.status_code == 200
        (high,) = seen.json()["cards"]
        assert high["source"]["topic"]["code"] == "vitd-high" and "furosemide (loop diuretic)" in high["detail"]
        draft = medication_by_reference("e2e-epic-d3", patient="e2e-epic", status="draft", id="draft-1")
        sign = request("e2e-epic", fhir_server, None)
        sign["hook"] = "order-sign"
        sign["context"]["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": draft}],
        }
        signed = await client.post("/cds-services/vitamin-d-order-sign", json=sign)
    assert signed.status_code == 200, signed.text
    (card,) = signed.json()["cards"]
    assert card["source"]["topic"]["code"] == "vitd-supplement-caution" and card["indicator"] == "critical"
    assert card["summary"].startswith("Critical: Cholecalciferol ordered")


async def test_a_partial_prefetched_bundle_is_completed_from_the_server(
    make_app: AppFactory, fhir_server: FhirServer
) -> None:
    """As the specification's order-sign example prefetches: one result of two, with a `next` link.
    The service reads the following page from the FHIR server, so the older result is in the trend."""
    first = httpx.get(
        f"{fhir_server.base}/Observation",
        params={"patient": "e2e-nmol", "code": "http://loinc.org|62292-8", "_sort": "-date", "_count": "1"},
        headers={"Authorization": f"Bearer {fhir_server.token}"},
    ).json()
    assert len(first["entry"]) == 1 and any(link["relation"] == "next" for link in first["link"])
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        body = request("e2e-nmol", fhir_server, {"vitaminD": first})
        answer = await client.post(URL, json=body)
    assert answer.status_code == 200
    cards = {c["source"]["topic"]["code"]: c for c in answer.json()["cards"]}
    assert "vitd-deficient" in cards, list(cards)
    deficient = cards["vitd-deficient"]
    assert "40 nmol/L (16 ng/mL)" in deficient["detail"] and "70 nmol/L (28 ng/mL)" in deficient["detail"]


async def test_a_partial_bundle_whose_next_link_leaves_the_server_stands_as_given(
    make_app: AppFactory, fhir_server: FhirServer
) -> None:
    given = {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{"relation": "next", "url": "https://elsewhere.example/fhir/Observation?page=2"}],
        "entry": [{"resource": obs("62292-8", 12, "ng/mL", "2026-11-10", patient="e2e-nmol", id="given-1")}],
    }
    async with make_client(app_at(make_app, "2026-11-25")) as client:
        answer = await client.post(URL, json=request("e2e-nmol", fhir_server, {"vitaminD": given}))
    assert answer.status_code == 200
    cards = {c["source"]["topic"]["code"]: c for c in answer.json()["cards"]}
    assert "vitd-deficient" in cards, list(cards)
    assert "12 ng/mL" in cards["vitd-deficient"]["summary"]
