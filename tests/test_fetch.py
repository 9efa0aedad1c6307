"""Hook calls without (full) prefetch: the service reads the rest from the EHR's FHIR server.
FHIR faults are simulated with respx here; tests/e2e runs the same against a real server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from tests.builders import bundle, hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, make_client
from tests.rules import without_uuids

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
FHIR = "https://ehr.example.org/fhir"
TOKEN = "secret-access-token-42"
VITAMIN_D = [obs("62292-8", 12, "ng/mL", "2026-11-10")]
ELECTROLYTES = [obs("2823-3", 4.2, "mmol/L"), obs("19123-9", 2.0, "mg/dL")]  # no calcium: checked with deficiency


def without_prefetch(keep: dict[str, Any] | None = None, server: str = FHIR) -> dict[str, Any]:
    request = hook_request()
    request["prefetch"] = keep or {}
    request["fhirServer"] = server
    request["fhirAuthorization"] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 300,
        "scope": "patient/Observation.read patient/Patient.read",
        "subject": "cds-service",
    }
    return request


def route_fhir(vitamin_d: Any = None, electrolytes: Any = None) -> dict[str, respx.Route]:
    """Searches routed by the codes they ask for, as the prefetch templates write them."""
    routes = {
        "patient": respx.get(f"{FHIR}/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"}),
        "vitaminD": respx.get(url__regex=rf"{FHIR}/Observation\?.*62292-8"),
        "electrolytes": respx.get(url__regex=rf"{FHIR}/Observation\?.*2823-3"),
        "conditions": respx.get(f"{FHIR}/Condition").respond(json=bundle()),
        "medications": respx.get(f"{FHIR}/MedicationRequest").respond(json=bundle()),
        "pendingOrders": respx.get(f"{FHIR}/ServiceRequest").respond(json=bundle()),
    }
    for key, answer in (("vitaminD", vitamin_d), ("electrolytes", electrolytes)):
        if isinstance(answer, httpx.Response):
            routes[key].mock(return_value=answer)
        else:
            routes[key].respond(json=answer if answer is not None else bundle())
    return routes


async def test_fetched_data_gives_the_same_cards_as_prefetch(client: httpx.AsyncClient) -> None:
    prefetched = await client.post(URL, json=hook_request(VITAMIN_D, ELECTROLYTES))
    with respx.mock:
        routes = route_fhir(bundle(*VITAMIN_D), bundle(*ELECTROLYTES))
        fetched = await client.post(URL, json=without_prefetch())
    assert fetched.status_code == prefetched.status_code == 200
    assert without_uuids(fetched.json()) == without_uuids(prefetched.json())
    assert [c["source"]["topic"]["code"] for c in fetched.json()["cards"]] == ["vitd-deficient", "electrolytes-check"]
    for route in routes.values():
        assert route.call_count == 1
        assert route.calls.last.request.headers["Authorization"] == f"Bearer {TOKEN}"


async def test_only_missing_keys_are_fetched(client: httpx.AsyncClient) -> None:
    with respx.mock:
        routes = route_fhir(electrolytes=bundle(*normal_electrolytes()))
        request = without_prefetch({"patient": {"resourceType": "Patient", "id": "p1"}, "vitaminD": bundle(*VITAMIN_D)})
        response = await client.post(URL, json=request)
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["vitd-deficient"]
    assert routes["patient"].call_count == 0 and routes["vitaminD"].call_count == 0
    assert routes["electrolytes"].call_count == 1


async def test_an_operation_outcome_in_prefetch_is_fetched_again(client: httpx.AsyncClient) -> None:
    failed = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
    with respx.mock:
        routes = route_fhir(vitamin_d=bundle(*VITAMIN_D))
        request = without_prefetch(
            {"patient": None, "vitaminD": failed, "electrolytes": bundle(*normal_electrolytes())}
        )
        response = await client.post(URL, json=request)
    assert routes["vitaminD"].call_count == 1
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["vitd-deficient"]


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500),
        httpx.Response(401),
        httpx.Response(429, headers={"Retry-After": "30"}),
        httpx.Response(200, html="<html>maintenance</html>"),
        httpx.Response(200, json={"resourceType": "Patient"}),
    ],
)
async def test_electrolytes_unavailable_still_answers_and_says_so(
    client: httpx.AsyncClient, failure: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="cds_service")
    with respx.mock:
        route_fhir(vitamin_d=bundle(*VITAMIN_D), electrolytes=failure)
        response = await client.post(URL, json=without_prefetch())
    cards = response.json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["vitd-deficient"]  # no electrolytes-check: unknown
    assert "could not be read from the EHR's FHIR server" in cards[0]["detail"]
    assert "Potassium, magnesium, calcium and albumin results" in cards[0]["detail"]
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    assert line.unavailable.startswith("electrolytes: ")
    assert TOKEN not in caplog.text and "p1" not in caplog.text.replace("http", "")


async def test_vitamin_d_unavailable_is_412_with_the_reason(client: httpx.AsyncClient) -> None:
    with respx.mock:
        route_fhir(vitamin_d=httpx.Response(401), electrolytes=bundle())
        response = await client.post(URL, json=without_prefetch())
    assert response.status_code == 412
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["prefetch.vitaminD"]
    assert "HTTP 401" in body["issue"][0]["diagnostics"] and TOKEN not in response.text


@pytest.mark.parametrize(
    "server", ["http://ehr.example.org/fhir", "file:///etc/passwd", "https://u:p@ehr.example.org/"]
)
async def test_a_refused_server_is_never_contacted(client: httpx.AsyncClient, server: str) -> None:
    with respx.mock(assert_all_called=False) as mock:
        anything = mock.route().respond(json=bundle())
        response = await client.post(URL, json=without_prefetch(server=server))
    assert response.status_code == 412
    assert "refused" in response.json()["issue"][0]["diagnostics"]
    assert anything.call_count == 0


@pytest.mark.parametrize(
    "server",
    ["https://127.0.0.1/fhir", "https://[::1]/fhir", "https://169.254.169.254/fhir", "https://localhost/fhir"],
)
async def test_a_server_on_a_private_address_is_refused_at_connection(client: httpx.AsyncClient, server: str) -> None:
    """No respx here: the address rule sits where the connection is made (tests/fhir/test_client.py
    shows with a listening socket that no connection is attempted)."""
    response = await client.post(URL, json=without_prefetch(server=server))
    assert response.status_code == 412
    assert "not a public address" in response.json()["issue"][0]["diagnostics"]


async def test_allowlist_setting(make_app: AppFactory) -> None:
    async with make_client(make_app(fhir_allowed_hosts=["fhir.other.example"])) as c:
        with respx.mock(assert_all_called=False) as mock:
            anything = mock.route().respond(json=bundle())
            response = await c.post(URL, json=without_prefetch())
    assert response.status_code == 412 and anything.call_count == 0
    assert "allowlist" in response.json()["issue"][0]["diagnostics"]


async def test_the_access_token_is_never_logged(client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    with respx.mock:
        route_fhir(bundle(*VITAMIN_D), bundle())
        await client.post(URL, json=without_prefetch())
    assert caplog.records and TOKEN not in caplog.text
