"""Hook calls without (full) prefetch: the service reads the rest from the EHR's FHIR server, here a
server on loopback answering as each test declares (tests/fhir_routes.py); tests/e2e runs the same
against a real FHIR server."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import bundle, hook_request, normal_electrolytes, obs
from tests.conftest import AppFactory, make_client
from tests.fhir_routes import FhirRoutes, Reply, Route, html
from tests.rules import without_uuids

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
TOKEN = "secret-access-token-42"
VITAMIN_D = [obs("62292-8", 12, "ng/mL", "2026-11-10")]
ELECTROLYTES = [obs("2823-3", 4.2, "mmol/L"), obs("19123-9", 2.0, "mg/dL")]  # no calcium: checked with deficiency


def without_prefetch(server: str, keep: dict[str, Any] | None = None) -> dict[str, Any]:
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


def route_fhir(fhir: FhirRoutes, vitamin_d: Any = None, electrolytes: Any = None) -> dict[str, Route]:
    """Searches routed by the codes they ask for, as the prefetch templates write them."""
    routes = {
        "patient": fhir.get("/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"}),
        "vitaminD": fhir.get(regex=r"^/fhir/Observation\?.*62292-8"),
        "electrolytes": fhir.get(regex=r"^/fhir/Observation\?.*2823-3"),
        "conditions": fhir.get("/Condition").respond(json=bundle()),
        "medications": fhir.get("/MedicationRequest").respond(json=bundle()),
        "pendingOrders": fhir.get("/ServiceRequest").respond(json=bundle()),
    }
    for key, answer in (("vitaminD", vitamin_d), ("electrolytes", electrolytes)):
        routes[key].mock(
            answer if isinstance(answer, Reply) else Reply(json=answer if answer is not None else bundle())
        )
    return routes


async def test_fetched_data_gives_the_same_cards_as_prefetch(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes
) -> None:
    prefetched = await fetching.post(URL, json=hook_request(VITAMIN_D, ELECTROLYTES))
    routes = route_fhir(fhir_routes, bundle(*VITAMIN_D), bundle(*ELECTROLYTES))
    fetched = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url))
    assert fetched.status_code == prefetched.status_code == 200
    assert without_uuids(fetched.json()) == without_uuids(prefetched.json())
    assert [c["source"]["topic"]["code"] for c in fetched.json()["cards"]] == ["vitd-deficient", "electrolytes-check"]
    for route in routes.values():
        assert route.call_count == 1
        assert route.calls[-1].headers["authorization"] == f"Bearer {TOKEN}"


async def test_only_missing_keys_are_fetched(fetching: httpx.AsyncClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.all_called = False
    routes = route_fhir(fhir_routes, electrolytes=bundle(*normal_electrolytes()))
    given = {"patient": {"resourceType": "Patient", "id": "p1"}, "vitaminD": bundle(*VITAMIN_D)}
    response = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url, given))
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == ["vitd-deficient"]
    assert routes["patient"].call_count == 0 and routes["vitaminD"].call_count == 0
    assert routes["electrolytes"].call_count == 1


@pytest.mark.parametrize(
    "failure",
    [
        Reply(500),
        Reply(401),
        Reply(429, headers={"Retry-After": "30"}),
        html("<html>maintenance</html>"),
        Reply(json={"resourceType": "Patient"}),
    ],
)
async def test_electrolytes_unavailable_still_answers_and_says_so(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, failure: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="cds_service")
    route_fhir(fhir_routes, vitamin_d=bundle(*VITAMIN_D), electrolytes=failure)
    response = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url))
    cards = response.json()["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["vitd-deficient"]  # no electrolytes-check: unknown
    assert "could not be read from the EHR's FHIR server" in cards[0]["detail"]
    assert "Potassium, magnesium, calcium and albumin results" in cards[0]["detail"]
    (line,) = [r for r in caplog.records if r.getMessage() == "hook call"]
    assert line.unavailable.startswith("electrolytes: ")
    assert TOKEN not in caplog.text and "p1" not in caplog.text.replace("http", "")


async def test_vitamin_d_unavailable_is_412_with_the_reason(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes
) -> None:
    fhir_routes.all_called = False
    route_fhir(fhir_routes, vitamin_d=Reply(401), electrolytes=bundle())
    response = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url))
    assert response.status_code == 412
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["expression"] == ["prefetch.vitaminD"]
    assert "HTTP 401" in body["issue"][0]["diagnostics"] and TOKEN not in response.text


@pytest.mark.parametrize(
    ("server", "reason"),
    [
        ("http://u:p@127.0.0.1:{port}/fhir", "credentials in the URL"),
        ("http://127.0.0.1:{port}/fhir?x=1", "query or fragment in the URL"),
        ("file:///etc/passwd", "not an https URL"),
    ],
)
async def test_a_refused_server_is_never_contacted(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, server: str, reason: str
) -> None:
    """A server on loopback that this service may reach answers anything; the policy refuses each
    of these URLs to it before any connection is made."""
    fhir_routes.all_called = False
    anything = fhir_routes.get().respond(json=bundle())
    response = await fetching.post(URL, json=without_prefetch(server.format(port=fhir_routes.port)))
    assert response.status_code == 412
    assert f"fhirServer refused: {reason}" in response.json()["issue"][0]["diagnostics"]
    assert anything.call_count == 0 and fhir_routes.connections_made == 0


@pytest.mark.parametrize(
    "server",
    ["https://127.0.0.1/fhir", "https://[::1]/fhir", "https://169.254.169.254/fhir", "https://localhost/fhir"],
)
async def test_a_server_on_a_private_address_is_refused_at_connection(client: httpx.AsyncClient, server: str) -> None:
    """The address rule sits where the connection is made (tests/fhir/test_client.py shows with a
    listening socket that no connection is attempted)."""
    response = await client.post(URL, json=without_prefetch(server))
    assert response.status_code == 412
    assert "not a public address" in response.json()["issue"][0]["diagnostics"]


async def test_allowlist_setting(make_app: AppFactory, fhir_routes: FhirRoutes) -> None:
    fhir_routes.all_called = False
    anything = fhir_routes.get().respond(json=bundle())
    app = make_app(fhir_allowed_hosts=["fhir.other.example"], fhir_allow_insecure=True)
    async with make_client(app) as c:
        response = await c.post(URL, json=without_prefetch(fhir_routes.base_url))
    assert response.status_code == 412 and anything.call_count == 0
    assert "allowlist" in response.json()["issue"][0]["diagnostics"]


async def test_the_access_token_is_never_logged(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    route_fhir(fhir_routes, bundle(*VITAMIN_D), bundle())
    assert (await fetching.post(URL, json=without_prefetch(fhir_routes.base_url))).status_code == 200
    assert caplog.records and TOKEN not in caplog.text
