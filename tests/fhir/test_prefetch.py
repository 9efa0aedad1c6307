"""Prefetch keys: given, known empty (null), or fetched (missing or an OperationOutcome)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cds_service.fhir.client import FhirClient, FhirUnavailable, make_http_client
from cds_service.fhir.prefetch import PrefetchKey, PrefetchUnavailable, render, resolve
from cds_service.protocol import HookRequest, RequestError
from cds_service.settings import Settings
from tests.builders import bundle, hook_request, obs
from tests.fhir_routes import Call, FhirRoutes, Reply

pytestmark = pytest.mark.anyio
BASE = "https://ehr.example.org/fhir"
KEYS = (
    PrefetchKey("patient", "Patient/{{context.patientId}}", "the patient", required=False),
    PrefetchKey("labs", "Observation?patient={{context.patientId}}&code=1", "labs"),
)
OUTCOME = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}


@pytest.fixture
async def fhir() -> AsyncIterator[FhirClient]:
    settings = Settings(fhir_allow_insecure=True)  # the routes server is http on loopback
    async with make_http_client(settings) as http:
        yield FhirClient(http, settings)


def request(prefetch: dict[str, Any] | None, server: str | None = BASE, **extra: Any) -> HookRequest:
    body = hook_request(prefetch={} if prefetch is None else prefetch) | extra
    if prefetch is None:
        del body["prefetch"]
    if server is not None:
        body["fhirServer"] = server
    return HookRequest.model_validate(body)


# --- rendering ----------------------------------------------------------------------------------


def test_render_fills_tokens_and_encodes_values() -> None:
    context = {"patientId": "a b&c/d", "userId": "Practitioner/77", "encounterId": "e1"}
    assert render("Observation?patient={{context.patientId}}", context) == "Observation?patient=a%20b%26c%2Fd"
    assert render("Encounter/{{ context.encounterId }}", context) == "Encounter/e1"
    assert render("Practitioner/{{userPractitionerId}}", context) == "Practitioner/77"


@pytest.mark.parametrize(
    ("template", "context"),
    [
        ("Encounter/{{context.encounterId}}", {"patientId": "p"}),
        ("Practitioner/{{userPractitionerId}}", {"userId": "PractitionerRole/3"}),
        ("Patient/{{context.patientId}}", {"patientId": 12}),
    ],
)
def test_render_without_a_value_is_unavailable(template: str, context: dict[str, Any]) -> None:
    with pytest.raises(FhirUnavailable):
        render(template, context)


# --- resolution ---------------------------------------------------------------------------------


async def test_given_and_null_are_not_fetched(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    labs = bundle(obs("62292-8", 12, "ng/mL"))
    # no route: any request would be unmatched, and the fixture fails the test
    got = await resolve(KEYS, request({"patient": None, "labs": labs}, fhir_routes.base_url), fhir)
    assert got.values == {"patient": None, "labs": labs} and got.unavailable == () and got.fetched == ()
    assert got.resources("patient") == ([], 0)
    assert got.resources("labs") == ([labs["entry"][0]["resource"]], 0)


@pytest.mark.parametrize("given", [{}, None])
async def test_missing_keys_are_fetched(
    fhir: FhirClient, fhir_routes: FhirRoutes, given: dict[str, Any] | None
) -> None:
    labs = bundle(obs("62292-8", 12, "ng/mL"))
    fhir_routes.get("/Observation", params={"patient": "p1"}).respond(json=labs)
    fhir_routes.get("/Patient/p1").respond(json={"resourceType": "Patient", "id": "p1"})
    got = await resolve(KEYS, request(given, fhir_routes.base_url), fhir)
    assert got.values["labs"]["entry"] == labs["entry"]  # type: ignore[index]
    assert set(got.fetched) == {"labs", "patient"}


async def test_a_key_the_ehr_could_not_prefetch_is_not_fetched_again(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """CDS Hooks 2.0.1, Prefetch: an OperationOutcome in place of a key is the EHR's failed read,
    sent to spare the service an unneeded follow-up query (tests/test_conformance.py has the call)."""
    # no route: any request would be unmatched, and the fixture fails the test
    with pytest.raises(PrefetchUnavailable) as exc:
        await resolve(KEYS, request({"patient": None, "labs": OUTCOME}, fhir_routes.base_url), fhir)
    (missing,) = exc.value.missing
    assert missing.key.name == "labs" and "OperationOutcome: " in missing.reason


async def test_required_key_that_cannot_be_had_is_412(fhir: FhirClient) -> None:
    with pytest.raises(PrefetchUnavailable) as exc:
        await resolve(KEYS, request({"patient": None}, server=None), fhir)
    (missing,) = exc.value.missing
    assert missing.key.name == "labs" and missing.reason == "no fhirServer in the request"


async def test_optional_key_that_cannot_be_had_is_listed(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    fhir_routes.get("/Patient/p1").respond(503)
    got = await resolve(KEYS, request({"labs": None}, fhir_routes.base_url), fhir)
    (missing,) = got.unavailable
    assert missing.key.name == "patient" and missing.reason == "HTTP 503" and got.missing("patient")


async def test_keys_are_fetched_concurrently(fhir: FhirClient, fhir_routes: FhirRoutes) -> None:
    """Each query waits until all three have arrived: fetched one after another, none could answer."""
    keys = tuple(PrefetchKey(f"k{i}", f"Observation?code={i}", f"data {i}") for i in range(3))
    arrived = 0

    async def together(call: Call) -> Reply:
        nonlocal arrived
        arrived += 1
        for _ in range(100):
            if arrived == 3:
                return Reply(json=bundle())
            await asyncio.sleep(0.02)
        return Reply(504)

    fhir_routes.get("/Observation").mock(side_effect=together)
    got = await resolve(keys, request(None, fhir_routes.base_url), fhir)
    assert set(got.fetched) == {"k0", "k1", "k2"} and got.unavailable == ()


def test_single_resource_and_entries_without_resources() -> None:
    from cds_service.fhir.prefetch import Prefetched

    patient = {"resourceType": "Patient", "id": "p1"}
    labs = {
        "resourceType": "Bundle",
        "entry": [{"fullUrl": "x"}, "junk", {"resource": {"resourceType": "Observation"}}],
    }
    got = Prefetched({"patient": patient, "labs": labs}, ())
    assert got.resources("patient") == ([patient], 0)
    assert got.resources("labs") == ([{"resourceType": "Observation"}], 2)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "prefetch.labs"),
        ("Bundle", "prefetch.labs"),
        ({"entry": []}, "prefetch.labs"),
        ({"resourceType": "Bundle", "entry": {}}, "prefetch.labs.entry"),
    ],
)
async def test_values_that_are_not_resources_are_bad_requests(fhir: FhirClient, value: object, field: str) -> None:
    with pytest.raises(RequestError) as exc:
        await resolve(KEYS, request({"labs": value}), fhir)
    assert exc.value.field == field
