"""The small conformance points of CDS Hooks 2.0.1 (HL7 STU2, cds-hooks.hl7.org/2.0), one test (or
table) per point, each citing the section it follows."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.builders import bundle, hook_request, normal_electrolytes, obs
from tests.fhir_routes import FhirRoutes
from tests.test_fetch import ELECTROLYTES, TOKEN, VITAMIN_D, route_fhir, without_prefetch

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
FAILED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
EPIC_NOTE = {  # Epic's warning beside its results (REAL-EHR.md, "Search Bundles"): not a failure
    "resourceType": "OperationOutcome",
    "issue": [{"severity": "warning", "code": "processing", "diagnostics": "Some results were not shown"}],
}


def _kinds(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [c["source"]["topic"]["code"] for c in response.json()["cards"]]


# --- Prefetch ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "failed",
    [
        FAILED,
        {**bundle(), "entry": [{"resource": FAILED, "search": {"mode": "outcome"}}]},
        {**FAILED, "issue": [*FAILED["issue"], {"severity": "error", "code": ["hostile"]}, "x"]},
    ],
    ids=["OperationOutcome", "Bundle holding an error OperationOutcome", "with issues of the wrong shape"],
)
async def test_a_failed_prefetch_of_required_data_is_not_queried_again_and_is_412(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, failed: dict[str, Any]
) -> None:
    """CDS Hooks 2.0.1, "Prefetch tokens": "If the CDS Client encounters errors prefetching the
    requested data, OperationOutcome(s) SHOULD be used to communicate those errors to prevent the
    CDS Service from incurring an unneeded follow-up query." The 25(OH)D key the EHR failed to
    read is not read again (the FHIR server here would answer, and no request may reach it), and
    no vitamin D status is inferred from its absence: the service cannot answer (412)."""
    fhir_routes.all_called = False
    routes = route_fhir(fhir_routes, vitamin_d=bundle(*VITAMIN_D))
    given = {"patient": None, "vitaminD": failed, "electrolytes": bundle(*normal_electrolytes())}
    given |= {"conditions": None, "medications": None, "pendingOrders": None}
    response = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url, given))
    assert all(route.call_count == 0 for route in routes.values())
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["prefetch.vitaminD"]
    assert "the EHR could not prefetch it (OperationOutcome: timeout)" in issue["diagnostics"]
    assert TOKEN not in response.text


async def test_a_failed_prefetch_of_optional_data_is_said_on_the_card(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes
) -> None:
    """CDS Hooks 2.0.1, "Prefetch tokens" (as above): the electrolytes the EHR failed to read are
    not queried; the card says they could not be read instead of judging them missing."""
    fhir_routes.all_called = False
    routes = route_fhir(fhir_routes, electrolytes=bundle(*ELECTROLYTES))
    given = {"patient": None, "vitaminD": bundle(*VITAMIN_D), "electrolytes": FAILED}
    given |= {"conditions": None, "medications": None, "pendingOrders": None}
    response = await fetching.post(URL, json=without_prefetch(fhir_routes.base_url, given))
    assert all(route.call_count == 0 for route in routes.values())
    (card,) = response.json()["cards"]
    assert _kinds(response) == ["vitd-deficient"]  # no electrolytes-check: unknown, not missing
    assert "Potassium, magnesium, calcium and albumin results" in card["detail"]


async def test_a_warning_beside_results_is_no_failure(client: httpx.AsyncClient) -> None:
    """CDS Hooks 2.0.1, "Prefetch tokens": only errors make a prefetch failed. A searchset holding
    a warning-level OperationOutcome beside its results (Epic's) is the search's answer and its
    results are read. (A null value is "no data", as the same section says:
    tests/test_api.py::test_null_prefetch_means_nothing_there.)"""
    request = hook_request([obs("62292-8", 12, "ng/mL", "2026-11-10")], normal_electrolytes())
    request["prefetch"]["vitaminD"]["entry"].append({"resource": EPIC_NOTE, "search": {"mode": "outcome"}})
    assert _kinds(await client.post(URL, json=request)) == ["vitd-deficient"]


# --- fhirAuthorization -------------------------------------------------------------------------


@pytest.mark.parametrize(("token_type", "status"), [("Bearer", 200), ("bearer", 200), ("BEARER", 200), ("MAC", 400)])
async def test_token_type_is_bearer_in_any_case(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, token_type: str, status: int
) -> None:
    """CDS Hooks 2.0.1, "Passing the Access Token to the CDS Service": `token_type` is "Bearer", an
    OAuth 2.0 token type, whose value is case-insensitive (RFC 6749, section 5.1): "bearer" is the
    same type; another type is a 400 naming the field, and nothing is fetched with it."""
    fhir_routes.all_called = status == 200
    route_fhir(fhir_routes, bundle(*VITAMIN_D), bundle(*ELECTROLYTES))
    request = without_prefetch(fhir_routes.base_url)
    request["fhirAuthorization"]["token_type"] = token_type
    response = await fetching.post(URL, json=request)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.token_type"]


@pytest.mark.parametrize(("bound", "status"), [("p1", 200), ("p2", 400)])
async def test_a_token_bound_to_another_patient_is_refused(
    fetching: httpx.AsyncClient, fhir_routes: FhirRoutes, bound: str, status: int
) -> None:
    """CDS Hooks 2.0.1, "Passing the Access Token to the CDS Service": `patient` identifies the
    patient a patient-scoped token is restricted to. A token for another patient than
    `context.patientId` is refused (400 naming `fhirAuthorization.patient`) before any query is
    made with it; the patient's own token is used."""
    fhir_routes.all_called = status == 200
    routes = route_fhir(fhir_routes, bundle(*VITAMIN_D), bundle(*ELECTROLYTES))
    request = without_prefetch(fhir_routes.base_url)
    request["fhirAuthorization"]["patient"] = bound
    response = await fetching.post(URL, json=request)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.patient"]
        assert all(route.call_count == 0 for route in routes.values())
        assert "p2" not in response.text and TOKEN not in response.text
