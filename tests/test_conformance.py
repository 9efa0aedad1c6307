"""The small conformance points of CDS Hooks 2.0.1 (HL7 STU2, cds-hooks.hl7.org/2.0), one test (or
table) per point, each citing the section it follows."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cds_service.store.database import open_database
from cds_service.store.report import build_report
from cds_service.store.schema import feedback
from tests.builders import bundle, hook_request, normal_electrolytes, obs
from tests.conftest import AS_OF, AppFactory, make_client
from tests.fhir_routes import FhirRoutes
from tests.test_fetch import ELECTROLYTES, TOKEN, VITAMIN_D, route_fhir, without_prefetch

pytestmark = pytest.mark.anyio
URL = "/cds-services/vitamin-d-cramps"
FAILED = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "timeout"}]}
EPIC_NOTE = {  # the warning Epic appends beside its search results: not a failure
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
    routes = route_fhir(fhir_routes, bundle(*VITAMIN_D), bundle(*ELECTROLYTES))
    request = without_prefetch(fhir_routes.base_url)
    request["fhirAuthorization"]["token_type"] = token_type
    response = await fetching.post(URL, json=request)
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["issue"][0]["expression"] == ["fhirAuthorization.token_type"]
        assert all(route.call_count == 0 for route in routes.values())


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


# --- Feedback ----------------------------------------------------------------------------------

FEEDBACK = f"{URL}/feedback"
WHEN = "2026-11-25T10:00:00Z"  # before AS_OF, when the feedback arrives


async def _issued(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    """A deficient patient's cards by kind: vitd-deficient (no suggestions) and electrolytes-check
    (suggestions)."""
    response = await client.post(URL, json=hook_request([obs("62292-8", 12, "ng/mL")], None))
    cards = {c["source"]["topic"]["code"]: c for c in response.json()["cards"]}
    assert cards["electrolytes-check"]["suggestions"] and not cards["vitd-deficient"].get("suggestions")
    return cards


def _override(card: dict[str, Any], code: str, when: str = WHEN) -> dict[str, Any]:
    reason = next(r for r in card["overrideReasons"] if r["code"] == code)
    return {
        "card": card["uuid"],
        "outcome": "overridden",
        "overrideReason": {"reason": reason},
        "outcomeTimestamp": when,
    }


def _accept(card: dict[str, Any], suggestion: str, when: str = WHEN) -> dict[str, Any]:
    return {
        "card": card["uuid"],
        "outcome": "accepted",
        "acceptedSuggestions": [{"id": suggestion}],
        "outcomeTimestamp": when,
    }


@pytest.fixture
def database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'feedback.sqlite'}"


@pytest.fixture
async def storing(make_app: AppFactory, database: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the service whose feedback lands in `database`."""
    async with make_client(make_app(database_url=database)) as client:
        yield client


async def _stored(database: str) -> list[tuple[str, str, str | None]]:
    """The feedback rows: card, outcome, override code, oldest first."""
    engine = open_database(database)
    try:
        async with engine.connect() as conn:
            query = select(feedback.c.card_uuid, feedback.c.outcome, feedback.c.override_code).order_by(feedback.c.id)
            return [(r.card_uuid, r.outcome, r.override_code) for r in await conn.execute(query)]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("accepted", [None, []], ids=["absent", "empty"])
async def test_accepted_needs_its_suggestions(
    storing: httpx.AsyncClient, database: str, accepted: list[Any] | None
) -> None:
    """CDS Hooks 2.0.1, Feedback: `acceptedSuggestions` is CONDITIONAL, "Required for `accepted`
    outcomes" (and "If either the card or the suggestion has no `uuid`, the CDS Client does not
    send a notification"). An acceptance without it is a 400 naming the field; nothing is stored."""
    cards = await _issued(storing)
    entry: dict[str, Any] = {"card": cards["vitd-deficient"]["uuid"], "outcome": "accepted", "outcomeTimestamp": WHEN}
    if accepted is not None:
        entry["acceptedSuggestions"] = accepted
    good = _override(cards["electrolytes-check"], "addressed")
    response = await storing.post(FEEDBACK, json={"feedback": [good, entry]})
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["feedback[1].acceptedSuggestions"]
    assert await _stored(database) == []


async def test_an_accepted_suggestion_must_be_one_of_its_cards(storing: httpx.AsyncClient, database: str) -> None:
    """CDS Hooks 2.0.1, Feedback, AcceptedSuggestion: `id` is "The `card.suggestion.uuid` from the
    CDS Hooks response". For a card this service issued, a suggestion it did not make (another
    card's, or none at all) is a 400 naming the entry's field, and the batch is stored all or
    nothing; the card's own suggestion is kept."""
    cards = await _issued(storing)
    check, deficient = cards["electrolytes-check"], cards["vitd-deficient"]
    own = check["suggestions"][0]["uuid"]
    for wrong in (_accept(deficient, own), _accept(check, str(uuid.uuid4()))):
        response = await storing.post(FEEDBACK, json={"feedback": [_accept(check, own), wrong]})
        assert response.status_code == 400
        assert response.json()["issue"][0]["expression"] == ["feedback[1].acceptedSuggestions[0].id"]
        assert await _stored(database) == []
    assert (await storing.post(FEEDBACK, json={"feedback": [_accept(check, own)]})).json()["new"] == 1


async def test_two_reasons_at_one_instant_are_two_answers(storing: httpx.AsyncClient, database: str) -> None:
    """CDS Hooks 2.0.1, Feedback: "a CDS Service may receive feedback for the same card instance
    multiple times". Two overrides of one card at the same outcomeTimestamp with different reasons
    are both kept; the same entry sent again is still kept once."""
    cards = await _issued(storing)
    card = cards["vitd-deficient"]
    first, second = _override(card, "patient-declined"), _override(card, "outside-result")
    assert (await storing.post(FEEDBACK, json={"feedback": [first]})).json() == {"received": 1, "new": 1}
    assert (await storing.post(FEEDBACK, json={"feedback": [second, first]})).json() == {"received": 2, "new": 1}
    assert (await storing.post(FEEDBACK, json={"feedback": [second]})).json() == {"received": 1, "new": 0}
    assert await _stored(database) == [
        (card["uuid"], "overridden", "patient-declined"),
        (card["uuid"], "overridden", "outside-result"),
    ]


async def test_a_future_outcome_timestamp_does_not_decide_the_latest(make_app: AppFactory, database: str) -> None:
    """CDS Hooks 2.0.1, Feedback: `outcomeTimestamp` is "when action was taken on the card". An
    action cannot be later than the feedback that reports it: an entry stamped in the future counts
    as taken when it arrived, so a later answer (here an acceptance an hour on) is the card's latest
    in the report, not the override whose EHR clock ran years ahead. The stamp is kept as sent."""
    async with make_client(make_app(database_url=database)) as client:
        card = (await _issued(client))["electrolytes-check"]
        ahead = _override(card, "addressed", when="2031-01-01T00:00:00Z")
        assert (await client.post(FEEDBACK, json={"feedback": [ahead]})).status_code == 200
    async with make_client(make_app(as_of=AS_OF + timedelta(hours=1), database_url=database)) as client:
        later = _accept(card, card["suggestions"][0]["uuid"], when=(AS_OF + timedelta(minutes=30)).isoformat())
        assert (await client.post(FEEDBACK, json={"feedback": [later]})).status_code == 200
    engine = open_database(database)
    try:
        report = await build_report(engine)
        async with engine.connect() as conn:
            stamps = list((await conn.execute(select(feedback.c.outcome_timestamp).order_by(feedback.c.id))).scalars())
    finally:
        await engine.dispose()
    (check,) = [k for k in report.kinds if k.kind == "electrolytes-check"]
    assert (check.accepted, check.overridden) == (1, 0)
    assert stamps[0] == datetime(2031, 1, 1)


# --- Use of JSON -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("Application/JSON;charset=UTF-8", 200),
        ("application/fhir+json", 200),
        ("text/plain", 415),
        ("text/plain;charset=UTF-8", 415),  # what a browser's fetch gives a string body
        ("application/x-www-form-urlencoded", 415),  # what curl --data sends by default
        ("multipart/form-data; boundary=x", 415),
        ("application/jsonp", 415),
        (None, 415),
    ],
)
@pytest.mark.parametrize("path", [URL, FEEDBACK])
async def test_a_body_that_is_not_json_is_415(
    storing: httpx.AsyncClient, content_type: str | None, status: int, path: str
) -> None:
    """CDS Hooks 2.0.1, "Use of JSON": all data "MUST be sent and received as JSON"; the
    specification's examples, the CDS Hooks Sandbox and the EHRs send `application/json`. A body
    declared as anything else, or not declared, is a 415 with an OperationOutcome (not a 400 that
    blames a field): the body is never read as JSON on a guess."""
    if path == URL:
        body = hook_request([obs("62292-8", 12, "ng/mL")], None)
    else:
        card = (await _issued(storing))["vitd-deficient"]
        body = {"feedback": [_override(card, "patient-declined")]}
    headers = {"Content-Type": content_type} if content_type else {}
    request = storing.build_request("POST", path, content=json.dumps(body).encode(), headers=headers)
    assert request.headers.get("Content-Type") == content_type
    response = await storing.send(request)
    assert response.status_code == status, response.text
    if status == 415:
        assert response.json()["resourceType"] == "OperationOutcome"
        assert response.json()["issue"][0]["code"] == "not-supported"


# --- Cross-Origin Resource Sharing -------------------------------------------------------------

ORIGIN = "https://sandbox.cds-hooks.org"


async def test_cors_allows_the_headers_a_browser_client_sends_and_exposes_the_answers(make_app: AppFactory) -> None:
    """CDS Hooks 2.0.1, "Cross-Origin Resource Sharing": "CDS Services and browser-based CDS Clients
    will require CORS support", following the OWASP guidance, whose gate is the allowed origins.
    A preflight from an allowed origin passes with the request headers it names (X-Request-ID
    beside Authorization and Content-Type), the response's X-Request-ID and X-CDS-Content-Version
    are readable by the EHR's script, and another origin gets nothing."""
    async with make_client(make_app(cors_origins=[ORIGIN])) as client:
        asked = "authorization,content-type,x-request-id"
        preflight = await client.options(
            URL,
            headers={
                "Origin": ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
            },
        )
        assert preflight.status_code == 200, preflight.text
        allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "x-request-id"} <= allowed
        assert "access-control-allow-credentials" not in preflight.headers
        discovery = await client.get("/cds-services", headers={"Origin": ORIGIN})
        exposed = {h.strip().lower() for h in discovery.headers["access-control-expose-headers"].split(",")}
        assert {"x-request-id", "x-cds-content-version"} <= exposed
        other = await client.options(
            URL,
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
            },
        )
        assert "access-control-allow-origin" not in other.headers


# --- Discovery ---------------------------------------------------------------------------------


async def test_discovery_says_what_each_service_needs(client: httpx.AsyncClient) -> None:
    """CDS Hooks 2.0.1, Discovery: `usageRequirements` is a "Human-friendly description of any
    preconditions for the use of this CDS Service". Each service names the JWT, the FHIR resources
    its token must be able to read for what is not prefetched (those of its prefetch, and the
    Medications that medication requests name), what it cannot answer without, and its feedback
    endpoint."""
    services = (await client.get("/cds-services")).json()["services"]
    assert len(services) == 3
    for service in services:
        text = service["usageRequirements"]
        assert "JWT" in text and f"cds-services/{service['id']}/feedback" in text
        read = {template.partition("?")[0].partition("/")[0] for template in service["prefetch"].values()}
        assert read >= {"Observation", "MedicationRequest"}
        for resource in read | {"Medication"}:
            assert resource in text, (service["id"], resource)
        assert "without vitamin D results the call is answered 412" in text
    assert "Patient" in services[0]["usageRequirements"]  # patient-view reads the Patient; the order hooks do not
    assert "Patient" not in services[1]["usageRequirements"]
